//! Constraint and affinity operators over a node's interpolated targets.
//!
//! Semantics follow Nomad's documentation: a missing left target fails every operator except
//! `!=`/`not` (missing differs from any value) and `is_not_set`; `<`, `<=`, `>`, `>=`
//! compare numerically when both sides parse as numbers, else lexically; `regexp` is an
//! unanchored match; `version` uses HashiCorp-style constraints (`>= 1.2, < 2.0`, `~> 1.2`,
//! pre-releases only match pre-release constraints of the same base), `semver` orders
//! pre-releases as Semantic Versioning 2.0 says and lets them match.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use regex::Regex;
use stead_model::Node;

/// Resolve a constraint target against a node: `${node.unique.id}`, `${node.unique.name}`,
/// `${node.datacenter}`, `${node.pool}`, `${node.class}`, `${attr.<key>}`, `${meta.<key>}`.
/// Text without `${` is a literal. `None`: the node has no such value.
pub fn resolve_target<'a>(target: &'a str, node: &'a Node) -> Option<&'a str> {
    let Some(inner) = target.strip_prefix("${").and_then(|t| t.strip_suffix('}')) else {
        return Some(target);
    };
    match inner {
        "node.unique.id" => Some(node.id.as_str()),
        "node.unique.name" => Some(node.name.as_str()),
        "node.datacenter" => Some(node.datacenter.as_str()),
        "node.class" => Some(node.node_class.as_str()),
        "node.pool" => Some(if node.node_pool.is_empty() { "default" } else { node.node_pool.as_str() }),
        _ => {
            if let Some(key) = inner.strip_prefix("attr.") {
                node.attributes.get(key).map(String::as_str)
            } else if let Some(key) = inner.strip_prefix("meta.") {
                node.meta.get(key).map(String::as_str)
            } else {
                None
            }
        }
    }
}

/// Whether a target depends on the node's identity rather than its class, which makes the
/// result of a check on it impossible to share between nodes of one computed class.
pub fn target_is_unique(target: &str) -> bool {
    target.contains("${node.unique.") || target.contains("${attr.unique.") || target.contains("${meta.unique.")
}

/// Compiled regular expressions, so a constraint is compiled once per placement run.
#[derive(Debug, Default)]
pub struct RegexCache {
    compiled: BTreeMap<String, Option<Regex>>,
}

impl RegexCache {
    fn is_match(&mut self, pattern: &str, text: &str) -> bool {
        let re = self.compiled.entry(pattern.to_owned()).or_insert_with(|| Regex::new(pattern).ok());
        re.as_ref().is_some_and(|re| re.is_match(text))
    }
}

/// Evaluate one operator. `distinct_hosts` and `distinct_property` are not node-local and
/// always pass here (they are checked against the allocations placed so far). Unknown
/// operators fail.
pub fn check_operator(operand: &str, l: Option<&str>, r: Option<&str>, regexes: &mut RegexCache) -> bool {
    match operand {
        "distinct_hosts" | "distinct_property" => true,
        "=" | "==" | "is" => matches!((l, r), (Some(l), Some(r)) if l == r),
        "!=" | "not" => l != r,
        "<" | "<=" | ">" | ">=" => match (l, r) {
            (Some(l), Some(r)) => {
                let ord = compare_order(l, r);
                match operand {
                    "<" => ord == Ordering::Less,
                    "<=" => ord != Ordering::Greater,
                    ">" => ord == Ordering::Greater,
                    _ => ord != Ordering::Less,
                }
            }
            _ => false,
        },
        "is_set" => l.is_some(),
        "is_not_set" => l.is_none(),
        "regexp" => matches!((l, r), (Some(l), Some(r)) if regexes.is_match(r, l)),
        "version" => matches!((l, r), (Some(l), Some(r)) if version_matches(l, r, VersionMode::HashiCorp)),
        "semver" => matches!((l, r), (Some(l), Some(r)) if version_matches(l, r, VersionMode::Semver)),
        "set_contains" | "set_contains_all" => match (l, r) {
            (Some(l), Some(r)) => {
                let have: Vec<&str> = split_set(l).collect();
                split_set(r).all(|want| have.contains(&want))
            }
            _ => false,
        },
        "set_contains_any" => match (l, r) {
            (Some(l), Some(r)) => {
                let have: Vec<&str> = split_set(l).collect();
                split_set(r).any(|want| have.contains(&want))
            }
            _ => false,
        },
        _ => false,
    }
}

fn split_set(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|v| !v.is_empty())
}

/// Integers, then floats, then bytes.
fn compare_order(l: &str, r: &str) -> Ordering {
    if let (Ok(a), Ok(b)) = (l.trim().parse::<i64>(), r.trim().parse::<i64>()) {
        return a.cmp(&b);
    }
    if let (Ok(a), Ok(b)) = (l.trim().parse::<f64>(), r.trim().parse::<f64>())
        && let Some(ord) = a.partial_cmp(&b)
    {
        return ord;
    }
    l.cmp(r)
}

/// `*` matches any run of characters; nothing else is special (datacenter globs).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionMode {
    /// HashiCorp go-version style: any number of segments, `~>`, pre-releases excluded
    /// unless the constraint names a pre-release of the same base.
    HashiCorp,
    /// Semantic Versioning 2.0: 1 to 3 segments, no `~>`, pre-releases ordered and allowed.
    Semver,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    segments: Vec<u64>,
    pre: Vec<String>,
}

impl Version {
    pub fn parse(s: &str, mode: VersionMode) -> Option<Self> {
        let s = s.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let s = s.split_once('+').map_or(s, |(v, _meta)| v);
        let (core, pre) = match s.split_once('-') {
            Some((core, pre)) if !pre.is_empty() => (core, pre.split('.').map(str::to_owned).collect()),
            Some(_) => return None,
            None => (s, Vec::new()),
        };
        let segments = core.split('.').map(|p| p.parse::<u64>().ok()).collect::<Option<Vec<_>>>()?;
        if segments.is_empty() || (mode == VersionMode::Semver && segments.len() > 3) {
            return None;
        }
        Some(Self { segments, pre })
    }

    fn segment(&self, i: usize) -> u64 {
        self.segments.get(i).copied().unwrap_or(0)
    }

    fn same_base(&self, other: &Self) -> bool {
        let n = self.segments.len().max(other.segments.len()).max(3);
        (0..n).all(|i| self.segment(i) == other.segment(i))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.segments.len().max(other.segments.len());
        for i in 0..n {
            match self.segment(i).cmp(&other.segment(i)) {
                Ordering::Equal => {}
                ord => return ord,
            }
        }
        match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                for (a, b) in self.pre.iter().zip(&other.pre) {
                    let ord = match (a.parse::<u64>(), b.parse::<u64>()) {
                        (Ok(x), Ok(y)) => x.cmp(&y),
                        (Ok(_), Err(_)) => Ordering::Less,
                        (Err(_), Ok(_)) => Ordering::Greater,
                        (Err(_), Err(_)) => a.cmp(b),
                    };
                    if ord != Ordering::Equal {
                        return ord;
                    }
                }
                self.pre.len().cmp(&other.pre.len())
            }
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// `version` / `semver`: does `version` satisfy every comma-separated term of `constraint`?
/// An unparsable version or constraint never matches.
pub fn version_matches(version: &str, constraint: &str, mode: VersionMode) -> bool {
    let Some(v) = Version::parse(version, mode) else {
        return false;
    };
    let mut terms = 0;
    for term in constraint.split(',') {
        let term = term.trim();
        let (op, rest) = ["~>", ">=", "<=", "!=", "==", "=", ">", "<"]
            .iter()
            .find_map(|op| term.strip_prefix(op).map(|rest| (*op, rest)))
            .unwrap_or(("=", term));
        if mode == VersionMode::Semver && op == "~>" {
            return false;
        }
        let Some(c) = Version::parse(rest, mode) else {
            return false;
        };
        if mode == VersionMode::HashiCorp {
            match (c.pre.is_empty(), v.pre.is_empty()) {
                (false, false) if !c.same_base(&v) => return false,
                (true, false) => return false,
                (false, true) if op == "~>" => return false,
                _ => {}
            }
        }
        let ok = match op {
            "=" | "==" => v == c || v.cmp(&c) == Ordering::Equal,
            "!=" => v.cmp(&c) != Ordering::Equal,
            ">" => v > c,
            "<" => v < c,
            ">=" => v >= c,
            "<=" => v <= c,
            _ => {
                // Pessimistic: at least `c`, and equal in every segment of `c` but the last.
                let fixed = c.segments.len().saturating_sub(1);
                v >= c && (0..fixed).all(|i| v.segment(i) == c.segment(i))
            }
        };
        if !ok {
            return false;
        }
        terms += 1;
    }
    terms > 0
}
