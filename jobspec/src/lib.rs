//! Nomad job files into stead's job records: HCL2 (with variables, locals, functions and
//! Nomad's runtime interpolations left as written) and Nomad's API JSON.
//!
//! Pure: no store, no tokio, no clock except through what the caller passes in. Depends on
//! `stead-store` only for the record types (`stead_store::model`).
