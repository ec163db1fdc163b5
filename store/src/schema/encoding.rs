//! The stored encoding of records: one format byte, then MessagePack with named fields.
//!
//! Named fields make the encoding self-describing, so it evolves as serde's derive allows:
//! an older record decodes into a newer struct whose added fields carry `#[serde(default)]`
//! (or are `Option`s), and a newer record decodes into an older struct, which ignores the
//! fields it does not know (do not use `#[serde(deny_unknown_fields)]` on stored types).
//! Renaming or retyping a field is not an evolution: add a new field instead.
//!
//! The format byte lets a later release change the format: a reader refuses a format it does
//! not know with an error rather than misreading it. See docs/store.md "Record encoding"
//! for the measurements behind the choice.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Format byte of MessagePack with named fields (`rmp_serde::encode::write_named`).
pub const FORMAT_MSGPACK_NAMED: u8 = 1;

/// Encodes `value` as `[FORMAT_MSGPACK_NAMED, msgpack…]`.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    // Most records are a few hundred bytes to a few kB: start past the first regrowths.
    let mut out = Vec::with_capacity(1024);
    out.push(FORMAT_MSGPACK_NAMED);
    // Fields at their default are left out (`stead_model::stored`): they decode back.
    stead_model::stored::encoding_for_storage(|| rmp_serde::encode::write_named(&mut out, value))
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Decodes what `encode` wrote (by this release or an earlier or later one of the same format).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match bytes.split_first() {
        None => Err("empty record value".to_string()),
        Some((&FORMAT_MSGPACK_NAMED, body)) => rmp_serde::from_slice(body).map_err(|e| e.to_string()),
        Some((format, _)) => Err(format!(
            "unknown record format {format} (this release reads format {FORMAT_MSGPACK_NAMED}; \
             was the record written by a newer release?)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Instant;

    use serde::Deserialize;

    use super::*;

    /// Shaped like a Nomad allocation as the API shows it (PascalCase names, nested task
    /// resources, task states with events), about 2.5 kB of JSON: what stead stores most of.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct SampleAlloc {
        #[serde(rename = "ID")]
        id: String,
        namespace: String,
        #[serde(rename = "EvalID")]
        eval_id: String,
        name: String,
        #[serde(rename = "NodeID")]
        node_id: String,
        node_name: String,
        #[serde(rename = "JobID")]
        job_id: String,
        task_group: String,
        allocated_resources: Resources,
        desired_status: String,
        desired_description: String,
        client_status: String,
        client_description: String,
        task_states: BTreeMap<String, TaskState>,
        deployment_status: Option<DeploymentStatus>,
        metrics: Metrics,
        create_index: u64,
        modify_index: u64,
        alloc_modify_index: u64,
        create_time: i64,
        modify_time: i64,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Resources {
        tasks: BTreeMap<String, TaskResources>,
        shared: Shared,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct TaskResources {
        cpu_shares: i64,
        memory_mb: i64,
        memory_max_mb: i64,
        networks: Vec<Network>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Network {
        mode: String,
        #[serde(rename = "IP")]
        ip: String,
        dynamic_ports: Vec<Port>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Port {
        label: String,
        value: u16,
        to: u16,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Shared {
        disk_mb: i64,
        ports: Vec<Port>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct TaskState {
        state: String,
        failed: bool,
        restarts: u64,
        started_at: Option<String>,
        finished_at: Option<String>,
        events: Vec<TaskEvent>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct TaskEvent {
        r#type: String,
        time: i64,
        display_message: String,
        details: BTreeMap<String, String>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct DeploymentStatus {
        healthy: Option<bool>,
        canary: bool,
        modify_index: u64,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Metrics {
        nodes_evaluated: u64,
        nodes_filtered: u64,
        nodes_available: BTreeMap<String, u64>,
        scores: BTreeMap<String, f64>,
        allocation_time: i64,
    }

    fn sample() -> SampleAlloc {
        let uuid = |n: u32| format!("{n:08x}-7c1e-4b7a-9f0e-3d2c1b0a{n:04x}");
        let port = |label: &str, value: u16| Port { label: label.to_string(), value, to: 0 };
        let event = |kind: &str, time: i64| TaskEvent {
            r#type: kind.to_string(),
            time,
            display_message: format!("Task {kind}"),
            details: BTreeMap::from([("message".to_string(), format!("{kind} by client"))]),
        };
        let tasks = ["web", "sidecar"]
            .iter()
            .map(|name| {
                let resources = TaskResources {
                    cpu_shares: 500,
                    memory_mb: 256,
                    memory_max_mb: 0,
                    networks: vec![Network {
                        mode: "host".to_string(),
                        ip: "10.0.3.17".to_string(),
                        dynamic_ports: vec![port("http", 24_512), port("metrics", 24_513)],
                    }],
                };
                (name.to_string(), resources)
            })
            .collect();
        let task_states = ["web", "sidecar"]
            .iter()
            .map(|name| {
                let state = TaskState {
                    state: "running".to_string(),
                    failed: false,
                    restarts: 0,
                    started_at: Some("2026-11-25T10:00:00.123456789Z".to_string()),
                    finished_at: None,
                    events: vec![
                        event("Received", 1_764_064_800_000_000_000),
                        event("Task Setup", 1_764_064_800_100_000_000),
                        event("Started", 1_764_064_801_000_000_000),
                    ],
                };
                (name.to_string(), state)
            })
            .collect();
        SampleAlloc {
            id: uuid(1),
            namespace: "default".to_string(),
            eval_id: uuid(2),
            name: "example.cache[3]".to_string(),
            node_id: uuid(3),
            node_name: "client-0042".to_string(),
            job_id: "example".to_string(),
            task_group: "cache".to_string(),
            allocated_resources: Resources { tasks, shared: Shared { disk_mb: 300, ports: vec![port("db", 6379)] } },
            desired_status: "run".to_string(),
            desired_description: String::new(),
            client_status: "running".to_string(),
            client_description: "Tasks are running".to_string(),
            task_states,
            deployment_status: Some(DeploymentStatus { healthy: Some(true), canary: false, modify_index: 1_234_567 }),
            metrics: Metrics {
                nodes_evaluated: 10_000,
                nodes_filtered: 12,
                nodes_available: BTreeMap::from([("dc1".to_string(), 9_988)]),
                scores: BTreeMap::from([(format!("{}.binpack", uuid(3)), 0.7312)]),
                allocation_time: 183_000,
            },
            create_index: 1_764_064_800_000_000,
            modify_index: 1_764_064_801_000_000,
            alloc_modify_index: 1_764_064_800_000_000,
            create_time: 1_764_064_800_000_000_000,
            modify_time: 1_764_064_801_000_000_000,
        }
    }

    /// (bytes, encode µs, decode µs) over `rounds` runs.
    fn measure(
        rounds: u32,
        encode: impl Fn(&SampleAlloc) -> Vec<u8>,
        decode: impl Fn(&[u8]) -> SampleAlloc,
    ) -> (usize, f64, f64) {
        let value = sample();
        let bytes = encode(&value);
        assert_eq!(decode(&bytes), value, "the format must round-trip the sample");
        let start = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(encode(std::hint::black_box(&value)));
        }
        let encode_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        let start = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(decode(std::hint::black_box(&bytes)));
        }
        let decode_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        (bytes.len(), encode_us, decode_us)
    }

    /// Not a timed assertion: prints the numbers behind the choice of format (run with
    /// `cargo test --release -p stead-store encoding_comparison -- --nocapture`), and checks
    /// that every candidate round-trips the sample.
    #[test]
    fn encoding_comparison_round_trips_and_reports_sizes_and_speeds() {
        let rounds = if cfg!(debug_assertions) { 200 } else { 20_000 };
        let rows = [
            ("msgpack (rmp-serde, named)", measure(rounds, |v| encode(v).unwrap(), |b| decode(b).unwrap())),
            (
                // For reference only: positional fields do not survive added or removed fields.
                "msgpack (positional)",
                measure(rounds, |v| rmp_serde::to_vec(v).unwrap(), |b| rmp_serde::from_slice(b).unwrap()),
            ),
            (
                "cbor (ciborium)",
                measure(
                    rounds,
                    |v| {
                        let mut out = Vec::new();
                        ciborium::into_writer(v, &mut out).unwrap();
                        out
                    },
                    |b| ciborium::from_reader(b).unwrap(),
                ),
            ),
            (
                "json (serde_json)",
                measure(rounds, |v| serde_json::to_vec(v).unwrap(), |b| serde_json::from_slice(b).unwrap()),
            ),
        ];
        for (name, (bytes, encode_us, decode_us)) in rows {
            println!("{name:<28} {bytes:>6} bytes  encode {encode_us:>7.2} µs  decode {decode_us:>7.2} µs");
        }
    }

    #[test]
    fn unknown_format_byte_is_refused_with_a_reason() {
        let mut bytes = encode(&sample()).unwrap();
        bytes[0] = 9;
        let error = decode::<SampleAlloc>(&bytes).unwrap_err();
        assert!(error.contains("unknown record format 9"), "{error}");
        assert!(decode::<SampleAlloc>(&[]).is_err());
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Status {
        Pending,
        Running { since: i64 },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct WithEnums {
        a: Status,
        b: Status,
        c: Option<Vec<u8>>,
        d: serde_json::Value,
    }

    #[test]
    fn enums_options_and_json_values_round_trip() {
        let value = WithEnums {
            a: Status::Pending,
            b: Status::Running { since: -5 },
            c: Some(vec![1, 2, 3]),
            d: serde_json::json!({"k": [1, "two", null, 3.5, {"n": true}]}),
        };
        assert_eq!(decode::<WithEnums>(&encode(&value).unwrap()).unwrap(), value);
    }
}
