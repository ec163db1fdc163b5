//! Decoding and encoding Nomad API JSON.
//!
//! Nomad's Go decoder matches JSON keys to struct fields case-insensitively (`"datacenters"`,
//! `"Datacenters"` and `"DATACENTERS"` all fill `Datacenters`) and treats `null` like a missing
//! field. serde matches exactly, so decoding goes in three steps:
//!
//! 1. parse the text into a `serde_json::Value` (syntax errors carry line and column);
//! 2. **normalise** the tree: every object key whose lower-case form is a field name some record
//!    knows is rewritten to that field's spelling, and `null` values of known fields are removed
//!    (so `"Constraints": null` decodes as an empty list). The table of names is derived from the
//!    record types themselves — by serialising each type's `Default`, which writes every field —
//!    so it cannot drift from the structs. Keys of user data are left alone: open maps (`Meta`,
//!    `Env`, driver `Config`, ...) are not entered at all, and maps keyed by user names
//!    (`Volumes`, `TaskStates`, ...) keep their keys while their values are normalised.
//!    The only spelling clash between records, `CPU` (job resources) vs `Cpu` (node and
//!    allocated resources), resolves to the job spelling for non-exact keys; exact keys always win.
//!    Two keys of one object that normalise to the same field are an error, as they would be
//!    ambiguous;
//! 3. deserialise with `serde_path_to_error`, so a type error names the field path; the path is
//!    then looked up in the original text to add its line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::*;

/// Why a job (or another record) could not be decoded from API JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobJsonError {
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Syntax { line: usize, column: usize, message: String },
    #[error("expected a JSON object (a job, or {{\"Job\": {{...}}}}), found {found}")]
    NotAnObject { found: &'static str },
    #[error("{path}: field given twice, as \"{first}\" and \"{second}\" (keys match case-insensitively); keep one")]
    DuplicateField { path: String, first: String, second: String },
    #[error("{path}{}: {message}", location(*.line, *.column))]
    Field { path: String, message: String, line: Option<usize>, column: Option<usize> },
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" (line {l}, column {c})"),
        _ => String::new(),
    }
}

/// Decode a job from Nomad API JSON: `{"Job": {...}}` (the register request shape; other
/// request fields are ignored) or a bare job object. Keys match case-insensitively.
pub fn job_from_api_json(input: &str) -> Result<Job, JobJsonError> {
    let mut root: Value = parse(input)?;
    let Value::Object(map) = &mut root else {
        return Err(JobJsonError::NotAnObject { found: kind_of(&root) });
    };
    let wrapper = map.keys().find(|k| k.eq_ignore_ascii_case("job")).cloned();
    let (job_value, prefix) = match wrapper {
        Some(key) => match map.remove(&key) {
            Some(v @ Value::Object(_)) => (v, vec![Segment::Key(key)]),
            other => {
                return Err(JobJsonError::NotAnObject { found: kind_of(&other.unwrap_or(Value::Null)) });
            }
        },
        None => (root, Vec::new()),
    };
    decode_value(input, job_value, prefix)
}

/// `{"Job": {...}}`, pretty-printed, as `nomad job inspect` prints it.
pub fn job_to_api_json(job: &Job) -> String {
    #[derive(Serialize)]
    struct Wrapper<'a> {
        #[serde(rename = "Job")]
        job: &'a Job,
    }
    // Serialising plain data into a String cannot fail: every map key is a string.
    serde_json::to_string_pretty(&Wrapper { job }).unwrap_or_default()
}

/// Decode any record (`Allocation`, `Node`, ...) from Nomad API JSON, with the same
/// case-insensitive, null-tolerant rules as `job_from_api_json`.
pub fn from_api_json<T: DeserializeOwned>(input: &str) -> Result<T, JobJsonError> {
    let value = parse(input)?;
    decode_value(input, value, Vec::new())
}

/// Like `from_api_json`, for a value already parsed (errors then carry no line and column).
pub fn from_api_value<T: DeserializeOwned>(value: Value) -> Result<T, JobJsonError> {
    decode_value("", value, Vec::new())
}

fn parse(input: &str) -> Result<Value, JobJsonError> {
    serde_json::from_str(input).map_err(|e| JobJsonError::Syntax {
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })
}

/// serde_json appends " at line L column C"; the error variants carry those separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn decode_value<T: DeserializeOwned>(input: &str, mut value: Value, prefix: Vec<Segment>) -> Result<T, JobJsonError> {
    normalize(&mut value, &mut prefix.clone())?;
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let mut segments = prefix.clone();
        for seg in e.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => segments.push(Segment::Index(*index)),
                serde_path_to_error::Segment::Map { key } => segments.push(Segment::Key(key.clone())),
                serde_path_to_error::Segment::Enum { variant } => segments.push(Segment::Key(variant.clone())),
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        let (line, column) = match locate(input, &segments) {
            Some(offset) => {
                let (l, c) = line_column(input, offset);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        JobJsonError::Field {
            path: render_path(&segments),
            message: strip_position(&e.inner().to_string()),
            line,
            column,
        }
    })
}

/// One step of a path into a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn render_path(segments: &[Segment]) -> String {
    let mut out = String::new();
    for seg in segments {
        match seg {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() { "(root)".to_owned() } else { out }
}

/// Fields whose value is data of its own (never renamed, never entered).
const OPAQUE_FIELDS: &[&str] = &[
    "Meta",
    "CanaryMeta",
    "Env",
    "Config",
    "Header",
    "GetterOptions",
    "GetterHeaders",
    "Policy",
    "Target",
    "TaggedAddresses",
    "Attributes",
    "Items",
    "Details",
    "Links",
    "Payload",
    "Rules",
];

/// Fields that, when they hold an object, map user-chosen names to records: keys are kept,
/// values are normalised. (`TaskGroups` and `Tasks` are lists in a job but maps in a
/// deployment and in allocated resources.)
const USER_KEYED_FIELDS: &[&str] = &[
    "Volumes",
    "TaskStates",
    "TaskGroups",
    "Tasks",
    "TaskLifecycles",
    "Drivers",
    "FailedTGAllocs",
    "QueuedAllocations",
    "ClassEligibility",
    "NodesAvailable",
    "ClassFiltered",
    "ConstraintFiltered",
    "ClassExhausted",
    "DimensionExhausted",
    "ResourcesExhausted",
    "Scores",
    "HostVolumes",
    "HostNetworks",
    "Summary",
    "DesiredTGUpdates",
];

/// The field names of all records: every exact spelling, and lower-case name → the spelling a
/// non-exact key is rewritten to.
struct KnownNames {
    exact: BTreeSet<String>,
    folded: BTreeMap<String, String>,
}

fn known_names() -> &'static KnownNames {
    static NAMES: OnceLock<KnownNames> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names = KnownNames { exact: BTreeSet::new(), folded: BTreeMap::new() };
        for sample in field_samples() {
            if let Value::Object(map) = sample {
                for key in map.keys() {
                    names.exact.insert(key.clone());
                    // First spelling wins: the job specification's types come first.
                    names.folded.entry(key.to_ascii_lowercase()).or_insert_with(|| key.clone());
                }
            }
        }
        names
    })
}

/// Every field name of every record; `pub(super)` so the tests can check for clashes.
pub(super) fn field_samples() -> Vec<Value> {
    fn s<T: Default + Serialize>() -> Value {
        serde_json::to_value(T::default()).unwrap_or(Value::Null)
    }
    vec![
        // The job specification first: its spellings win clashes.
        s::<Job>(),
        s::<TaskGroup>(),
        s::<Task>(),
        s::<Resources>(),
        s::<NetworkResource>(),
        s::<Port>(),
        s::<DnsConfig>(),
        s::<RequestedDevice>(),
        s::<Constraint>(),
        s::<Affinity>(),
        s::<Spread>(),
        s::<SpreadTarget>(),
        s::<UpdateStrategy>(),
        s::<MigrateStrategy>(),
        s::<RestartPolicy>(),
        s::<ReschedulePolicy>(),
        s::<DisconnectStrategy>(),
        s::<EphemeralDisk>(),
        s::<VolumeRequest>(),
        s::<ScalingPolicy>(),
        s::<Lifecycle>(),
        s::<LogConfig>(),
        s::<Artifact>(),
        s::<Template>(),
        s::<ChangeScript>(),
        s::<WaitConfig>(),
        s::<DispatchPayloadConfig>(),
        s::<VolumeMount>(),
        s::<Service>(),
        s::<ServiceCheck>(),
        s::<CheckRestart>(),
        s::<PeriodicConfig>(),
        s::<ParameterizedJobConfig>(),
        // The other records.
        s::<JobVersions>(),
        s::<JobSummary>(),
        s::<TaskGroupSummary>(),
        s::<JobChildrenSummary>(),
        s::<Allocation>(),
        s::<DesiredTransition>(),
        s::<TaskState>(),
        s::<TaskEvent>(),
        s::<AllocDeploymentStatus>(),
        s::<RescheduleTracker>(),
        s::<RescheduleEvent>(),
        s::<AllocatedResources>(),
        s::<AllocatedTaskResources>(),
        s::<AllocatedCpuResources>(),
        s::<AllocatedMemoryResources>(),
        s::<AllocatedSharedResources>(),
        s::<AllocatedPortMapping>(),
        s::<AllocMetric>(),
        s::<NodeScoreMeta>(),
        s::<Evaluation>(),
        s::<Deployment>(),
        s::<DeploymentState>(),
        s::<Node>(),
        s::<NodeResources>(),
        s::<NodeCpuResources>(),
        s::<NodeMemoryResources>(),
        s::<NodeDiskResources>(),
        s::<NodeReservedResources>(),
        s::<NodeReservedCpuResources>(),
        s::<NodeReservedNetworkResources>(),
        s::<DriverInfo>(),
        s::<DrainSpec>(),
        s::<DrainStrategy>(),
        s::<NodeEvent>(),
        s::<AclPolicy>(),
        s::<JobAcl>(),
        s::<AclToken>(),
        s::<Namespace>(),
        s::<Variable>(),
        s::<ServiceRegistration>(),
    ]
}

fn normalize(value: &mut Value, path: &mut Vec<Segment>) -> Result<(), JobJsonError> {
    match value {
        Value::Object(map) => {
            let names = known_names();
            let old = std::mem::take(map);
            let mut original_keys: BTreeMap<String, String> = BTreeMap::new();
            for (key, mut child) in old {
                let canonical = if names.exact.contains(&key) {
                    Some(key.clone())
                } else {
                    names.folded.get(&key.to_ascii_lowercase()).cloned()
                };
                let Some(canonical) = canonical else {
                    // Unknown field: kept as is (it lands in `extra`), its insides normalised.
                    path.push(Segment::Key(key.clone()));
                    normalize(&mut child, path)?;
                    path.pop();
                    insert_unique(map, &mut original_keys, path, key.clone(), key, child)?;
                    continue;
                };
                if child.is_null() {
                    continue;
                }
                path.push(Segment::Key(canonical.clone()));
                if OPAQUE_FIELDS.contains(&canonical.as_str()) {
                    // user data: leave alone
                } else if USER_KEYED_FIELDS.contains(&canonical.as_str())
                    && let Value::Object(entries) = &mut child
                {
                    for (name, entry) in entries.iter_mut() {
                        path.push(Segment::Key(name.clone()));
                        normalize(entry, path)?;
                        path.pop();
                    }
                } else {
                    normalize(&mut child, path)?;
                }
                path.pop();
                insert_unique(map, &mut original_keys, path, canonical, key, child)?;
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(Segment::Index(i));
                normalize(item, path)?;
                path.pop();
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn insert_unique(
    map: &mut serde_json::Map<String, Value>,
    original_keys: &mut BTreeMap<String, String>,
    path: &[Segment],
    canonical: String,
    original: String,
    child: Value,
) -> Result<(), JobJsonError> {
    if let Some(first) = original_keys.get(&canonical) {
        let mut field_path = path.to_vec();
        field_path.push(Segment::Key(canonical.clone()));
        return Err(JobJsonError::DuplicateField {
            path: render_path(&field_path),
            first: first.clone(),
            second: original,
        });
    }
    original_keys.insert(canonical.clone(), original);
    map.insert(canonical, child);
    Ok(())
}

// ---- Finding a path in the original text, for line and column --------------------------------

/// Byte offset of the value at `path` in `text`, following keys case-insensitively.
fn locate(text: &str, path: &[Segment]) -> Option<usize> {
    let b = text.as_bytes();
    let mut pos = skip_ws(b, 0);
    for seg in path {
        match seg {
            Segment::Key(want) => {
                if b.get(pos) != Some(&b'{') {
                    return None;
                }
                pos += 1;
                loop {
                    pos = skip_ws(b, pos);
                    if b.get(pos)? != &b'"' {
                        return None;
                    }
                    let end = skip_string(b, pos)?;
                    let key: String = serde_json::from_str(text.get(pos..end)?).ok()?;
                    pos = skip_ws(b, end);
                    if b.get(pos)? != &b':' {
                        return None;
                    }
                    pos = skip_ws(b, pos + 1);
                    if key.eq_ignore_ascii_case(want) {
                        break;
                    }
                    pos = skip_ws(b, skip_value(b, pos)?);
                    if b.get(pos)? != &b',' {
                        return None;
                    }
                    pos += 1;
                }
            }
            Segment::Index(want) => {
                if b.get(pos) != Some(&b'[') {
                    return None;
                }
                pos = skip_ws(b, pos + 1);
                for _ in 0..*want {
                    pos = skip_ws(b, skip_value(b, pos)?);
                    if b.get(pos)? != &b',' {
                        return None;
                    }
                    pos = skip_ws(b, pos + 1);
                }
            }
        }
    }
    Some(pos)
}

fn skip_ws(b: &[u8], mut pos: usize) -> usize {
    while pos < b.len() && b[pos].is_ascii_whitespace() {
        pos += 1;
    }
    pos
}

/// `pos` is at an opening quote; returns the offset just past the closing quote.
fn skip_string(b: &[u8], mut pos: usize) -> Option<usize> {
    pos += 1;
    while pos < b.len() {
        match b[pos] {
            b'\\' => pos += 2,
            b'"' => return Some(pos + 1),
            _ => pos += 1,
        }
    }
    None
}

fn skip_value(b: &[u8], pos: usize) -> Option<usize> {
    match b.get(pos)? {
        b'"' => skip_string(b, pos),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut p = pos;
            while p < b.len() {
                match b[p] {
                    b'"' => {
                        p = skip_string(b, p)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(p + 1);
                        }
                    }
                    _ => {}
                }
                p += 1;
            }
            None
        }
        _ => {
            let mut p = pos;
            while p < b.len() && !matches!(b[p], b',' | b'}' | b']') && !b[p].is_ascii_whitespace() {
                p += 1;
            }
            Some(p)
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}
