//! Where each value of the produced API JSON came from in the HCL file, so that problems found
//! later (decoding into `stead_model::Job`, `Job::validate()`) can name
//! `file:line:column` as parse errors do.
//!
//! Paths are relative to the job (the object under `"Job"`) and spelt the way
//! `stead_model::validate` spells them: fields joined with `.`, array elements and
//! entries of maps keyed by user data (`Meta`, `Env`, `Volumes`, task `Config`) in brackets:
//! `TaskGroups[0].Tasks[1].Resources.CPU`, `TaskGroups[0].Networks[0].ReservedPorts[2].Label`,
//! `TaskGroups[0].Volumes[data].Source`, `Meta[team]`, `TaskGroups[0].Tasks[0].Config[image]`.
//! The job itself is the empty path.

use std::collections::BTreeMap;

use crate::JobspecError;

/// Positions (1-based line and column) of the values of one parsed job, by JSON path.
///
/// A block's values are at the block's first token (its type name, or `dynamic` for a block a
/// `dynamic` block generated), an argument's at the argument's name. Values the file does not
/// set have no entry; [`SourceMap::locate`] answers for them with the nearest enclosing value
/// that has one, so a problem with a default points at the block that lacks the setting.
///
/// Values that canonicalization copies from elsewhere are also found where they came from: a
/// group's `Update`, `Migrate` and `ReschedulePolicy` fields not set in the group point into the
/// job's `update`, `migrate` and `reschedule` blocks, a task's `RestartPolicy` fields into its
/// group's `restart` block, a group `Count` left out into `scaling { min }`, and a task's
/// `Vault` into the group- or job-level `vault` block it was copied from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceMap {
    file: String,
    positions: BTreeMap<String, (usize, usize)>,
}

impl SourceMap {
    pub(crate) fn new(file: &str, src: &str, offsets: BTreeMap<String, usize>) -> Self {
        let index = LineIndex::new(src);
        let mut positions: BTreeMap<String, (usize, usize)> =
            offsets.into_iter().map(|(path, offset)| (path, index.line_col(offset))).collect();
        inherit(&mut positions);
        SourceMap { file: file.to_string(), positions }
    }

    /// The file name given to the parser.
    pub fn filename(&self) -> &str {
        &self.file
    }

    /// The position of the value at `path` if the file sets it, else of its nearest ancestor
    /// that it sets (at worst the `job` block, path `""`). `None` only for an empty map.
    pub fn locate(&self, path: &str) -> Option<(usize, usize)> {
        if let Some(p) = self.positions.get(path) {
            return Some(*p);
        }
        // Every shorter prefix ending before a `.` or `[`, longest first. Map keys holding `.`
        // or `[` only add prefixes that are not recorded.
        path.char_indices()
            .rev()
            .filter(|(_, c)| matches!(c, '.' | '['))
            .find_map(|(i, _)| self.positions.get(&path[..i]))
            .or_else(|| self.positions.get(""))
            .copied()
    }

    /// The position of the value at exactly `path`, without falling back to an ancestor.
    pub fn get(&self, path: &str) -> Option<(usize, usize)> {
        self.positions.get(path).copied()
    }

    /// Every recorded path with its position, in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, (usize, usize))> {
        self.positions.iter().map(|(k, v)| (k.as_str(), *v))
    }

    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// An error about the value at `path`, positioned with [`SourceMap::locate`] (line and
    /// column 0 when nothing is known).
    pub fn error_at(&self, path: &str, message: impl Into<String>) -> JobspecError {
        let (line, column) = self.locate(path).unwrap_or((0, 0));
        JobspecError { file: self.file.clone(), line, column, message: message.into() }
    }

    /// A `Job::validate()` error as a positioned error; the message keeps the path
    /// (`file:line:column: TaskGroups[0].Count: count must be 0 or more (got -1)`).
    pub fn validation_error(&self, e: &stead_model::ValidationError) -> JobspecError {
        self.error_at(&e.path, e.to_string())
    }
}

/// Adds positions for values `Job::canonicalize` copies from one place to another, where the
/// destination has none of its own.
fn inherit(positions: &mut BTreeMap<String, (usize, usize)>) {
    for g in 0.. {
        let group = format!("TaskGroups[{g}]");
        if !positions.contains_key(&group) {
            break;
        }
        for (from, to) in [("Update", "Update"), ("Migrate", "Migrate"), ("Reschedule", "ReschedulePolicy")] {
            copy_tree(positions, from, &format!("{group}.{to}"));
        }
        let count = format!("{group}.Count");
        if !positions.contains_key(&count)
            && let Some(p) = positions.get(&format!("{group}.Scaling.Min")).copied()
        {
            positions.insert(count, p);
        }
        for t in 0.. {
            let task = format!("{group}.Tasks[{t}]");
            if !positions.contains_key(&task) {
                break;
            }
            copy_tree(positions, &format!("{group}.RestartPolicy"), &format!("{task}.RestartPolicy"));
        }
    }
}

/// Records what is recorded at and below `from` again below `to`, where `to` has nothing.
fn copy_tree(positions: &mut BTreeMap<String, (usize, usize)>, from: &str, to: &str) {
    let copies: Vec<(String, (usize, usize))> = positions
        .range(from.to_string()..)
        .take_while(|(k, _)| k.starts_with(from))
        .filter(|(k, _)| crate::job::is_within(k, from))
        .map(|(k, v)| (format!("{to}{}", &k[from.len()..]), *v))
        .collect();
    for (k, v) in copies {
        positions.entry(k).or_insert(v);
    }
}

/// Line starts of a text, for turning many byte offsets into positions.
struct LineIndex<'a> {
    src: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(src: &'a str) -> Self {
        let starts = std::iter::once(0).chain(src.match_indices('\n').map(|(i, _)| i + 1)).collect();
        LineIndex { src, starts }
    }

    /// 1-based line and column (in characters) of a byte offset, as `crate::line_col`.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.src.len());
        while !self.src.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        (line, self.src[start..offset].chars().count() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_agrees_with_line_col() {
        let src = "ab\nçd\n\nxyz";
        let index = LineIndex::new(src);
        for offset in 0..=src.len() + 2 {
            assert_eq!(index.line_col(offset), crate::line_col(src, offset), "{offset}");
        }
    }

    #[test]
    fn locate_falls_back_to_the_nearest_recorded_ancestor() {
        let offsets = BTreeMap::from([
            (String::new(), 0),
            ("Meta".to_string(), 2),
            ("Meta[a.b]".to_string(), 4),
            ("TaskGroups[0]".to_string(), 6),
        ]);
        let map = SourceMap::new("f.hcl", "0\n2\n4\n6\n", offsets);
        assert_eq!(map.filename(), "f.hcl");
        assert_eq!(map.locate("Meta[a.b]"), Some((3, 1)));
        assert_eq!(map.locate("Meta[a.c]"), Some((2, 1)));
        assert_eq!(map.locate("TaskGroups[0].Tasks[3].Name"), Some((4, 1)));
        assert_eq!(map.locate("TaskGroups[1]"), Some((1, 1)));
        assert_eq!(map.get("TaskGroups[1]"), None);
        assert_eq!(SourceMap::default().locate("Meta"), None);
    }

    #[test]
    fn job_level_policies_are_inherited_where_the_group_sets_nothing() {
        let offsets = BTreeMap::from([
            (String::new(), 0),
            ("Update".to_string(), 2),
            ("Update.Canary".to_string(), 4),
            ("TaskGroups[0]".to_string(), 6),
            ("TaskGroups[0].Update".to_string(), 8),
            ("TaskGroups[0].Tasks[0]".to_string(), 10),
            ("TaskGroups[0].RestartPolicy".to_string(), 12),
            ("TaskGroups[1]".to_string(), 14),
        ]);
        let src = "0\n2\n4\n6\n8\n10\n12\n14\n";
        let offsets: BTreeMap<String, usize> =
            offsets.into_iter().map(|(k, line)| (k, src.find(&format!("{line}\n")).unwrap_or(0))).collect();
        let map = SourceMap::new("f.hcl", src, offsets);
        assert_eq!(map.locate("TaskGroups[0].Update"), Some((5, 1)));
        assert_eq!(map.locate("TaskGroups[0].Update.Canary"), Some((3, 1)));
        assert_eq!(map.locate("TaskGroups[1].Update"), Some((2, 1)));
        assert_eq!(map.locate("TaskGroups[1].Update.Canary"), Some((3, 1)));
        assert_eq!(map.locate("TaskGroups[0].Tasks[0].RestartPolicy.Mode"), Some((7, 1)));
    }
}
