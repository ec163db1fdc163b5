//! The stored encoding of records leaves out fields that hold their default value.
//!
//! Every field of every record carries `#[serde(skip_serializing_if = "crate::stored::is_default")]`,
//! which skips a field only while [`encoding_for_storage`] runs: the store's encoder sets it,
//! the HTTP API's JSON never does, so API responses keep every field, as Nomad's do. Every
//! record struct derives `Default` and is `#[serde(default)]`, so a skipped field decodes to
//! the value it had. An allocation stores in about half the bytes, and decodes about twice
//! as fast, since most of its fields are empty (see docs/store.md "Record encoding").

use std::cell::Cell;

thread_local! {
    static FOR_STORAGE: Cell<bool> = const { Cell::new(false) };
}

/// Whether a field is skipped: only while encoding for storage, and only at its default.
pub fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    FOR_STORAGE.with(Cell::get) && *value == T::default()
}

/// Runs `encode` with default fields skipped (on this thread, for the duration of the call).
pub fn encoding_for_storage<R>(encode: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            FOR_STORAGE.with(|f| f.set(self.0));
        }
    }
    let _reset = Reset(FOR_STORAGE.with(|f| f.replace(true)));
    encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AllocatedResources, Allocation, Job};

    #[test]
    fn storage_encoding_drops_default_fields_and_decodes_back_equal_while_json_keeps_them() {
        let alloc = Allocation {
            id: "a1".into(),
            name: "web.g[0]".to_owned(),
            job_version: 3,
            allocated_resources: Some(AllocatedResources::default()),
            ..Allocation::default()
        };
        let json = serde_json::to_value(&alloc).unwrap();
        assert!(json.get("NextAllocation").is_some(), "the API shape keeps empty fields");
        let stored = encoding_for_storage(|| serde_json::to_value(&alloc)).unwrap();
        assert!(stored.get("NextAllocation").is_none(), "{stored}");
        assert_eq!(stored["JobVersion"], 3);
        assert!(stored.get("AllocatedResources").is_some(), "Some(default) is not None");
        assert_eq!(serde_json::from_value::<Allocation>(stored).unwrap(), alloc);
        // The flag is off again after the call.
        assert!(serde_json::to_value(&alloc).unwrap().get("NextAllocation").is_some());
    }

    #[test]
    fn a_scored_node_keeps_every_field_in_json_and_round_trips_with_unknown_fields() {
        let mut meta = crate::NodeScoreMeta {
            node_id: "n1".into(),
            scores: [("binpack".to_owned(), 0.5)].into(),
            norm_score: 0.0,
            ..Default::default()
        };
        meta.extra.insert("Later".to_owned(), serde_json::json!(7));
        let json = serde_json::to_value(&meta).unwrap();
        assert_eq!(json, serde_json::json!({"NodeID": "n1", "Scores": {"binpack": 0.5}, "NormScore": 0.0, "Later": 7}));
        let stored = encoding_for_storage(|| serde_json::to_value(&meta)).unwrap();
        assert_eq!(stored, serde_json::json!({"NodeID": "n1", "Scores": {"binpack": 0.5}, "Later": 7}));
        assert_eq!(serde_json::from_value::<crate::NodeScoreMeta>(stored).unwrap(), meta);
    }

    #[test]
    fn every_fixture_job_round_trips_through_the_storage_encoding() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testdata");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let Ok(mut job) = crate::job_from_api_json(&std::fs::read_to_string(&path).unwrap()) else {
                continue;
            };
            job.canonicalize();
            let stored = encoding_for_storage(|| serde_json::to_string(&job)).unwrap();
            let back: Job = serde_json::from_str(&stored).unwrap();
            assert_eq!(back, job, "{}", path.display());
            checked += 1;
        }
        assert!(checked > 0, "fixtures were read from {}", dir.display());
    }
}
