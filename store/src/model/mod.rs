//! The records stead stores — the database of desired and observed state — in the shapes of
//! Nomad's API JSON (PascalCase names, durations in nanoseconds), so the HTTP API serves
//! them as they are.
