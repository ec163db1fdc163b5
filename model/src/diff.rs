//! Structured job diffs, as Nomad shows them (`job plan`, `job history -p`, the versions
//! API): which objects and fields of a job were added, deleted or edited.
//!
//! The diff works on a job's API JSON (`serde_json::to_value(&job)`), so it follows the
//! model as it evolves without a hand-written case per field. The rules:
//! * scalars are fields (`FieldDiff`), compared by their JSON text;
//! * `Meta` and `Env` become one field per key, named `Meta[key]`;
//! * a driver's `Config` is flattened, one field per leaf (`args[1]`, `port_map[0].http`),
//!   as Nomad's plan shows it;
//! * nested objects become `ObjectDiff`s named after their field;
//! * arrays of objects that carry a `Name` or `Label` are matched by it (task groups,
//!   tasks, services, ports); other arrays are compared as sets of whole elements;
//! * anything else that differs (a reordered list, a duplicate) is reported as one edited
//!   field holding the JSON of both sides, so a diff is empty exactly when the jobs are
//!   equal (a null member and a missing one count as equal);
//! * the job's bookkeeping fields (indexes, version, status, submit time, stable) are not
//!   part of its content and are ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Nomad's diff `Type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiffType {
    None,
    Added,
    Deleted,
    Edited,
}

impl DiffType {
    /// The marker Nomad's CLI prints before a line.
    pub fn marker(self) -> &'static str {
        match self {
            DiffType::None => "",
            DiffType::Added => "+",
            DiffType::Deleted => "-",
            DiffType::Edited => "+/-",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FieldDiff {
    #[serde(rename = "Type")]
    pub kind: DiffType,
    pub name: String,
    pub old: String,
    pub new: String,
    pub annotations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ObjectDiff {
    #[serde(rename = "Type")]
    pub kind: DiffType,
    pub name: String,
    pub fields: Vec<FieldDiff>,
    pub objects: Vec<ObjectDiff>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskDiff {
    #[serde(rename = "Type")]
    pub kind: DiffType,
    pub name: String,
    pub fields: Vec<FieldDiff>,
    pub objects: Vec<ObjectDiff>,
    pub annotations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskGroupDiff {
    #[serde(rename = "Type")]
    pub kind: DiffType,
    pub name: String,
    pub fields: Vec<FieldDiff>,
    pub objects: Vec<ObjectDiff>,
    pub tasks: Vec<TaskDiff>,
    /// Filled by the scheduler's plan (`create`, `destroy`, `in-place update`, ...).
    pub updates: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobDiff {
    #[serde(rename = "Type")]
    pub kind: DiffType,
    #[serde(rename = "ID")]
    pub id: String,
    pub fields: Vec<FieldDiff>,
    pub objects: Vec<ObjectDiff>,
    pub task_groups: Vec<TaskGroupDiff>,
}

impl JobDiff {
    pub fn is_empty(&self) -> bool {
        self.kind == DiffType::None
    }
}

/// Job fields that are bookkeeping, not content.
const IGNORED: &[&str] = &[
    "CreateIndex",
    "ModifyIndex",
    "JobModifyIndex",
    "Version",
    "Status",
    "StatusDescription",
    "SubmitTime",
    "Stable",
    "Stop",
];

/// The diff from `old` to `new` (API JSON of two jobs; `Value::Null` for "no job").
pub fn diff_jobs(old: &Value, new: &Value) -> JobDiff {
    let id = string_of(new.get("ID").or_else(|| old.get("ID")));
    let (old_obj, new_obj) = (as_object(old), as_object(new));
    let mut fields = Vec::new();
    let mut objects = Vec::new();
    let skip: Vec<&str> = IGNORED.iter().copied().chain(["TaskGroups"]).collect();
    diff_members(&old_obj, &new_obj, &skip, &mut fields, &mut objects);
    let task_groups = diff_named(old_obj.get("TaskGroups"), new_obj.get("TaskGroups"))
        .into_iter()
        .map(|(name, o, n)| diff_group(&name, o, n))
        .collect::<Vec<_>>();
    if task_groups.iter().all(|g| g.kind == DiffType::None) {
        fallback(&mut fields, "TaskGroups", old_obj.get("TaskGroups"), new_obj.get("TaskGroups"));
    }
    let kind = overall(
        old,
        new,
        fields.is_empty() && objects.is_empty() && task_groups.iter().all(|g| g.kind == DiffType::None),
    );
    JobDiff { kind, id, fields, objects, task_groups }
}

fn diff_group(name: &str, old: &Value, new: &Value) -> TaskGroupDiff {
    let (old_obj, new_obj) = (as_object(old), as_object(new));
    let mut fields = Vec::new();
    let mut objects = Vec::new();
    diff_members(&old_obj, &new_obj, &["Tasks", "Name"], &mut fields, &mut objects);
    let tasks: Vec<TaskDiff> = diff_named(old_obj.get("Tasks"), new_obj.get("Tasks"))
        .into_iter()
        .map(|(task, o, n)| {
            let (o_obj, n_obj) = (as_object(o), as_object(n));
            let mut fields = Vec::new();
            let mut objects = Vec::new();
            diff_members(&o_obj, &n_obj, &["Name"], &mut fields, &mut objects);
            let kind = overall(o, n, fields.is_empty() && objects.is_empty());
            TaskDiff { kind, name: task, fields, objects, annotations: Vec::new() }
        })
        .collect();
    if tasks.iter().all(|t| t.kind == DiffType::None) {
        fallback(&mut fields, "Tasks", old_obj.get("Tasks"), new_obj.get("Tasks"));
    }
    let unchanged = fields.is_empty() && objects.is_empty() && tasks.iter().all(|t| t.kind == DiffType::None);
    TaskGroupDiff {
        kind: overall(old, new, unchanged),
        name: name.to_string(),
        fields,
        objects,
        tasks,
        updates: BTreeMap::new(),
    }
}

/// Added / Deleted when one side is absent, else Edited unless nothing changed.
fn overall(old: &Value, new: &Value, unchanged: bool) -> DiffType {
    match (old.is_null(), new.is_null()) {
        (true, false) => DiffType::Added,
        (false, true) => DiffType::Deleted,
        _ if unchanged => DiffType::None,
        _ => DiffType::Edited,
    }
}

type Object = serde_json::Map<String, Value>;

fn as_object(v: &Value) -> Object {
    v.as_object().cloned().unwrap_or_default()
}

fn string_of(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Members equal up to null-versus-missing.
fn same(old: Option<&Value>, new: Option<&Value>) -> bool {
    normalized(old.unwrap_or(&Value::Null)) == normalized(new.unwrap_or(&Value::Null))
}

/// `v` without null object members, recursively.
pub fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), normalized(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

/// When the structured rules saw no change but the values differ (order, duplicates),
/// one edited field with the JSON of both sides.
fn fallback(fields: &mut Vec<FieldDiff>, name: &str, old: Option<&Value>, new: Option<&Value>) {
    if !same(old, new) {
        let text = |v: Option<&Value>| v.map(|v| normalized(v).to_string()).unwrap_or_default();
        fields.push(FieldDiff {
            kind: DiffType::Edited,
            name: name.to_string(),
            old: text(old),
            new: text(new),
            annotations: Vec::new(),
        });
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Object(_) | Value::Array(_))
}

/// Diffs the members of two objects (fields and nested objects), skipping `skip`.
fn diff_members(old: &Object, new: &Object, skip: &[&str], fields: &mut Vec<FieldDiff>, objects: &mut Vec<ObjectDiff>) {
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        if skip.contains(&name.as_str()) {
            continue;
        }
        let (o, n) = (old.get(name).unwrap_or(&Value::Null), new.get(name).unwrap_or(&Value::Null));
        if same(Some(o), Some(n)) {
            continue;
        }
        let (fields_before, objects_before) = (fields.len(), objects.len());
        if is_scalar(o) && is_scalar(n) {
            fields.push(field(name, o, n));
        } else if KEYED_MAPS.contains(&name.as_str()) && is_string_map(o) && is_string_map(n) {
            let (om, nm) = (as_object(o), as_object(n));
            let mut keys: Vec<&String> = om.keys().chain(nm.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let (ov, nv) = (om.get(key).unwrap_or(&Value::Null), nm.get(key).unwrap_or(&Value::Null));
                if !same(Some(ov), Some(nv)) {
                    fields.push(field(&format!("{name}[{key}]"), ov, nv));
                }
            }
        } else if name == "Config" && is_map_or_null(o) && is_map_or_null(n) {
            // A driver's config is flattened into one field per leaf, as Nomad's
            // `configDiff` does: `args[1]`, `port_map[0].http`.
            let d = diff_flattened(name, o, n);
            if d.kind != DiffType::None {
                objects.push(d);
            }
        } else if o.is_array() || n.is_array() {
            objects.extend(diff_array(name, o, n));
        } else {
            let d = diff_object(name, o, n);
            if d.kind != DiffType::None {
                objects.push(d);
            }
        }
        if fields.len() == fields_before && objects.len() == objects_before {
            fallback(fields, name, Some(o), Some(n));
        }
    }
}

fn is_map_or_null(v: &Value) -> bool {
    matches!(v, Value::Object(_) | Value::Null)
}

/// `value`'s leaves under dotted and indexed names (`a.b`, `a[0]`); an empty object or
/// array is a leaf of its own (so that flattening keeps every difference).
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&name, v, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        Value::Null if prefix.is_empty() => {}
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

fn diff_flattened(name: &str, old: &Value, new: &Value) -> ObjectDiff {
    let (mut o, mut n) = (BTreeMap::new(), BTreeMap::new());
    flatten("", old, &mut o);
    flatten("", new, &mut n);
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let fields: Vec<FieldDiff> = keys
        .into_iter()
        .filter_map(|k| {
            let (ov, nv) = (o.get(k).unwrap_or(&Value::Null), n.get(k).unwrap_or(&Value::Null));
            (!same(Some(ov), Some(nv))).then(|| field(k, ov, nv))
        })
        .collect();
    let kind = overall(old, new, fields.is_empty());
    ObjectDiff { kind, name: name.to_string(), fields, objects: Vec::new() }
}

/// Maps Nomad shows key by key as fields of their parent (`Meta[team]`); other maps
/// (driver `Config`) are objects of their own.
const KEYED_MAPS: &[&str] = &["Meta", "Env"];

/// A map whose values are all scalars: diffed key by key.
fn is_string_map(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.values().all(is_scalar),
        _ => false,
    }
}

fn diff_object(name: &str, old: &Value, new: &Value) -> ObjectDiff {
    let (o, n) = (as_object(old), as_object(new));
    let mut fields = Vec::new();
    let mut objects = Vec::new();
    diff_members(&o, &n, &[], &mut fields, &mut objects);
    let kind = overall(old, new, fields.is_empty() && objects.is_empty());
    ObjectDiff { kind, name: name.to_string(), fields, objects }
}

/// Arrays: scalars as a set of fields; objects matched by Name/Label when they have one,
/// else as a set of whole elements.
fn diff_array(name: &str, old: &Value, new: &Value) -> Vec<ObjectDiff> {
    let empty = Vec::new();
    let (o, n) = (old.as_array().unwrap_or(&empty), new.as_array().unwrap_or(&empty));
    if o.iter().chain(n).all(is_scalar) {
        let mut fields = Vec::new();
        for v in o.iter().filter(|v| !n.contains(v)) {
            fields.push(field(name, v, &Value::Null));
        }
        for v in n.iter().filter(|v| !o.contains(v)) {
            fields.push(field(name, &Value::Null, v));
        }
        let kind = overall(old, new, fields.is_empty());
        return if fields.is_empty() {
            Vec::new()
        } else {
            vec![ObjectDiff { kind, name: name.to_string(), fields, objects: Vec::new() }]
        };
    }
    let item = singular(name);
    if o.iter().chain(n).all(|v| key_of(v).is_some()) {
        return diff_named(Some(old), Some(new))
            .into_iter()
            .map(|(_, ov, nv)| diff_object(&item, ov, nv))
            .filter(|d| d.kind != DiffType::None)
            .collect();
    }
    let mut out = Vec::new();
    for v in o.iter().filter(|v| !n.contains(v)) {
        out.push(diff_object(&item, v, &Value::Null));
    }
    for v in n.iter().filter(|v| !o.contains(v)) {
        out.push(diff_object(&item, &Value::Null, v));
    }
    out
}

fn key_of(v: &Value) -> Option<String> {
    ["Name", "Label"].iter().find_map(|k| v.get(*k).and_then(Value::as_str)).map(str::to_string)
}

/// Pairs elements of two arrays of named objects: (name, old or Null, new or Null), in
/// the new order, then deleted ones in the old order.
fn diff_named<'a>(old: Option<&'a Value>, new: Option<&'a Value>) -> Vec<(String, &'a Value, &'a Value)> {
    static EMPTY: Vec<Value> = Vec::new();
    let o = old.and_then(Value::as_array).unwrap_or(&EMPTY);
    let n = new.and_then(Value::as_array).unwrap_or(&EMPTY);
    let find = |list: &'a [Value], name: &str| list.iter().find(|v| key_of(v).as_deref() == Some(name));
    let mut out = Vec::new();
    for nv in n {
        let name = key_of(nv).unwrap_or_default();
        out.push((name.clone(), find(o, &name).unwrap_or(&Value::Null), nv));
    }
    for ov in o {
        let name = key_of(ov).unwrap_or_default();
        if find(n, &name).is_none() {
            out.push((name, ov, &Value::Null));
        }
    }
    out
}

/// `Constraints` → `Constraint`, as Nomad names the objects of a list.
fn singular(name: &str) -> String {
    name.strip_suffix("ies")
        .map(|s| format!("{s}y"))
        .or_else(|| name.strip_suffix('s').map(str::to_string))
        .unwrap_or_else(|| name.to_string())
}

fn field(name: &str, old: &Value, new: &Value) -> FieldDiff {
    let kind = match (old.is_null(), new.is_null()) {
        (true, false) => DiffType::Added,
        (false, true) => DiffType::Deleted,
        _ => DiffType::Edited,
    };
    FieldDiff {
        kind,
        name: name.to_string(),
        old: string_of(Some(old)),
        new: string_of(Some(new)),
        annotations: Vec::new(),
    }
}

/// Renders a diff in Nomad's CLI style: `+`, `-`, `+/-` markers, nested objects indented
/// two spaces, fields as `Name: "old" => "new"`.
pub fn render(diff: &JobDiff) -> String {
    let mut out = String::new();
    if diff.kind == DiffType::None {
        out.push_str(&format!("Job: \"{}\"\n", diff.id));
        return out;
    }
    out.push_str(&format!("{} Job: \"{}\"\n", diff.kind.marker(), diff.id));
    render_body(&mut out, &diff.fields, &diff.objects, 0);
    for group in &diff.task_groups {
        let updates: Vec<String> = group.updates.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let counts = if updates.is_empty() { String::new() } else { format!(" ({})", updates.join(", ")) };
        out.push_str(&format!("{} Task Group: \"{}\"{}\n", marker_or_space(group.kind), group.name, counts));
        render_body(&mut out, &group.fields, &group.objects, 1);
        for task in &group.tasks {
            let notes =
                if task.annotations.is_empty() { String::new() } else { format!(" ({})", task.annotations.join(", ")) };
            out.push_str(&format!("  {} Task: \"{}\"{}\n", marker_or_space(task.kind), task.name, notes));
            render_body(&mut out, &task.fields, &task.objects, 2);
        }
    }
    out
}

fn marker_or_space(kind: DiffType) -> &'static str {
    if kind == DiffType::None { " " } else { kind.marker() }
}

fn render_body(out: &mut String, fields: &[FieldDiff], objects: &[ObjectDiff], depth: usize) {
    let pad = "  ".repeat(depth);
    for f in fields {
        let text = match f.kind {
            DiffType::Added => format!("{}: \"{}\"", f.name, f.new),
            DiffType::Deleted => format!("{}: \"{}\"", f.name, f.old),
            _ => format!("{}: \"{}\" => \"{}\"", f.name, f.old, f.new),
        };
        out.push_str(&format!("{pad}{} {text}\n", f.kind.marker()));
    }
    for o in objects {
        out.push_str(&format!("{pad}{} {} {{\n", o.kind.marker(), o.name));
        render_body(out, &o.fields, &o.objects, depth + 1);
        out.push_str(&format!("{pad}  }}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job() -> Value {
        json!({
            "ID": "web", "Name": "web", "Type": "service", "Priority": 50,
            "Datacenters": ["dc1"], "Meta": {"team": "a"},
            "Constraints": [{"LTarget": "${attr.kernel.name}", "RTarget": "linux", "Operand": "="}],
            "TaskGroups": [{
                "Name": "frontend", "Count": 2,
                "Tasks": [{"Name": "server", "Driver": "docker", "Config": {"image": "nginx:1.25"},
                           "Resources": {"CPU": 100, "MemoryMB": 128}}]
            }],
            "ModifyIndex": 7, "Version": 1
        })
    }

    #[test]
    fn a_drivers_config_is_flattened_into_one_field_per_leaf_as_nomad_shows_it() {
        let mut a = job();
        a["TaskGroups"][0]["Tasks"][0]["Config"] = json!({"command": "/bin/sh", "args": ["-c", "echo v1"]});
        let mut b = a.clone();
        b["TaskGroups"][0]["Tasks"][0]["Config"]["args"][1] = json!("echo v2");
        b["TaskGroups"][0]["Tasks"][0]["Config"]["ports"] = json!([{"http": 80}]);
        let d = diff_jobs(&a, &b);
        let config = &d.task_groups[0].tasks[0].objects[0];
        assert_eq!((config.name.as_str(), config.kind), ("Config", DiffType::Edited));
        let fields: Vec<(&str, DiffType, &str)> =
            config.fields.iter().map(|f| (f.name.as_str(), f.kind, f.new.as_str())).collect();
        assert_eq!(fields, vec![("args[1]", DiffType::Edited, "echo v2"), ("ports[0].http", DiffType::Added, "80")]);
        assert!(render(&d).contains("+/- args[1]: \"echo v1\" => \"echo v2\""), "{}", render(&d));
        let mut empty = a.clone();
        empty["TaskGroups"][0]["Tasks"][0]["Config"]["args"] = json!([]);
        assert_ne!(diff_jobs(&a, &empty).kind, DiffType::None, "an emptied list is a difference");
    }

    #[test]
    fn a_job_compared_with_itself_has_no_diff() {
        let d = diff_jobs(&job(), &job());
        assert!(d.is_empty(), "{d:#?}");
        assert!(d.fields.is_empty() && d.objects.is_empty());
        assert!(d.task_groups.iter().all(|g| g.kind == DiffType::None));
    }

    #[test]
    fn bookkeeping_fields_are_not_a_change() {
        let mut b = job();
        b["ModifyIndex"] = json!(99);
        b["Version"] = json!(4);
        assert!(diff_jobs(&job(), &b).is_empty());
    }

    #[test]
    fn edits_additions_and_deletions_are_typed_and_rendered_as_nomad_does() {
        let mut b = job();
        b["Priority"] = json!(70);
        b["Meta"] = json!({"team": "b", "tier": "web"});
        b["Datacenters"] = json!(["dc1", "dc2"]);
        b["TaskGroups"][0]["Count"] = json!(3);
        b["TaskGroups"][0]["Tasks"][0]["Config"]["image"] = json!("nginx:1.27");
        b["TaskGroups"][0]["Tasks"].as_array_mut().unwrap().push(json!({"Name": "sidecar", "Driver": "exec"}));
        let d = diff_jobs(&job(), &b);
        assert_eq!(d.kind, DiffType::Edited);
        let names: Vec<_> = d.fields.iter().map(|f| (f.name.as_str(), f.kind)).collect();
        assert_eq!(
            names,
            [("Meta[team]", DiffType::Edited), ("Meta[tier]", DiffType::Added), ("Priority", DiffType::Edited)]
        );
        assert_eq!(d.objects[0].name, "Datacenters");
        let group = &d.task_groups[0];
        assert_eq!(group.kind, DiffType::Edited);
        assert_eq!(group.fields[0].name, "Count");
        assert_eq!(group.tasks[0].kind, DiffType::Edited);
        assert_eq!(group.tasks[0].objects[0].name, "Config");
        assert_eq!(group.tasks[1].kind, DiffType::Added);
        let text = render(&d);
        assert!(text.starts_with("+/- Job: \"web\"\n"), "{text}");
        assert!(text.contains("+/- Priority: \"50\" => \"70\""), "{text}");
        assert!(text.contains("+ Meta[tier]: \"web\""), "{text}");
        assert!(text.contains("+/- Task Group: \"frontend\""), "{text}");
        assert!(text.contains("  + Task: \"sidecar\""), "{text}");
        assert!(text.contains("+/- image: \"nginx:1.25\" => \"nginx:1.27\""), "{text}");
    }

    #[test]
    fn a_new_job_is_added_and_a_removed_group_is_deleted() {
        assert_eq!(diff_jobs(&Value::Null, &job()).kind, DiffType::Added);
        let mut b = job();
        b["TaskGroups"] = json!([]);
        let d = diff_jobs(&job(), &b);
        assert_eq!(d.task_groups[0].kind, DiffType::Deleted);
        let mut c = job();
        c["Constraints"] = json!([]);
        let d = diff_jobs(&job(), &c);
        assert_eq!(d.objects[0].name, "Constraint");
        assert_eq!(d.objects[0].kind, DiffType::Deleted);
    }

    #[test]
    fn diffs_of_real_job_records_follow_their_changes() {
        let mut a = crate::job_from_api_json(include_str!("testdata/full_job.json")).unwrap();
        a.canonicalize();
        let va = serde_json::to_value(&a).unwrap();
        assert!(diff_jobs(&va, &va).is_empty());
        let mut vb = va.clone();
        vb["TaskGroups"][0]["Count"] = json!(9);
        vb["Version"] = json!(3);
        let d = diff_jobs(&va, &vb);
        assert_eq!(d.kind, DiffType::Edited);
        assert!(d.fields.is_empty(), "bookkeeping is not a change: {:?}", d.fields);
        let group = d.task_groups.iter().find(|g| g.kind == DiffType::Edited).unwrap();
        assert_eq!(group.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["Count"]);
        assert_eq!(group.fields[0].new, "9");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn leaf() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                (0i64..5).prop_map(Value::from),
                "[a-c]{0,2}".prop_map(Value::from),
            ]
        }

        fn tree() -> impl Strategy<Value = Value> {
            leaf().prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
                    proptest::collection::btree_map("[A-C]", inner.clone(), 0..3)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                    ("[x-z]", inner).prop_map(|(name, v)| serde_json::json!({"Name": name, "V": v})),
                ]
            })
        }

        fn job_of(body: Value, groups: Vec<(String, Value)>) -> Value {
            let groups: Vec<Value> = groups.into_iter().map(|(n, v)| serde_json::json!({"Name": n, "X": v})).collect();
            serde_json::json!({"ID": "j", "Body": body, "TaskGroups": groups})
        }

        proptest! {
            #[test]
            fn diff_is_empty_exactly_when_the_jobs_are_equal(
                a in tree(), b in tree(),
                ga in proptest::collection::vec(("[g-h]", tree()), 0..2),
                gb in proptest::collection::vec(("[g-h]", tree()), 0..2),
            ) {
                let (ja, jb) = (job_of(a, ga), job_of(b, gb));
                prop_assert!(diff_jobs(&ja, &ja).is_empty());
                // Names must be unique for name matching to be meaningful, as Nomad requires.
                let unique = |j: &Value| {
                    let names: Vec<_> = j["TaskGroups"].as_array().unwrap().iter().map(|g| g["Name"].clone()).collect();
                    let mut d = names.clone();
                    d.sort_by_key(|v| v.to_string());
                    d.dedup();
                    d.len() == names.len()
                };
                prop_assume!(unique(&ja) && unique(&jb));
                prop_assert_eq!(diff_jobs(&ja, &jb).is_empty(), normalized(&ja) == normalized(&jb), "{:#?}", diff_jobs(&ja, &jb));
            }
        }
    }
}
