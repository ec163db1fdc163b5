//! IDs as users type them: unique prefixes, as Nomad's CLI takes them. UUID-keyed objects
//! (allocations, evaluations, nodes) need at least two characters; jobs any. One match, or
//! an exact one among several, is the object; none or several ambiguous ones are errors
//! that say so (and list the candidates).

use anyhow::{Context, bail};
use serde_json::Value;

use super::api::Client;
use super::format::{self, text};

/// The objects named by UUIDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Alloc,
    Eval,
    Node,
}

impl Kind {
    fn list_path(self) -> &'static str {
        match self {
            Kind::Alloc => "/v1/allocations",
            Kind::Eval => "/v1/evaluations",
            Kind::Node => "/v1/nodes",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Kind::Alloc => "allocation",
            Kind::Eval => "evaluation",
            Kind::Node => "node",
        }
    }
}

/// The list stub of the one object of `kind` whose ID starts with `prefix`.
pub fn uuid(client: &Client, kind: Kind, prefix: &str, verbose: bool) -> anyhow::Result<Value> {
    if prefix.chars().count() < 2 {
        bail!("Identifier must contain at least two characters.");
    }
    let noun = kind.singular();
    let answer = client
        .get(kind.list_path(), &[("prefix", prefix.to_owned())])
        .with_context(|| format!("Error querying {noun}"))?;
    let matches = answer.value.as_array().cloned().unwrap_or_default();
    pick(kind, prefix, matches, verbose)
}

fn pick(kind: Kind, prefix: &str, matches: Vec<Value>, verbose: bool) -> anyhow::Result<Value> {
    let noun = kind.singular();
    if let Some(exact) = matches.iter().find(|m| text(m, "ID") == prefix) {
        return Ok(exact.clone());
    }
    match matches.len() {
        0 if kind == Kind::Node => bail!("No node(s) with prefix {prefix:?} found"),
        0 => bail!("No {noun}(s) with prefix or id {prefix:?} found"),
        1 => Ok(matches.into_iter().next().unwrap_or_default()),
        _ => {
            let listing = match kind {
                Kind::Alloc => format::alloc_match_list(&matches, verbose, format::now_ns()),
                Kind::Eval => format::eval_list(&matches, verbose),
                Kind::Node => format::node_list(&matches, verbose),
            };
            bail!("Prefix matched multiple {noun}s\n\n{listing}")
        }
    }
}

/// A job named by `prefix`: its ID, and whether `prefix` was the ID itself (a prefix
/// match makes `job stop` ask first).
pub fn job(client: &Client, prefix: &str) -> anyhow::Result<(String, bool)> {
    let answer = client.get("/v1/jobs", &[("prefix", prefix.to_owned())]).context("Error querying job prefix")?;
    let jobs = answer.value.as_array().cloned().unwrap_or_default();
    pick_job(prefix, &jobs)
}

fn pick_job(prefix: &str, jobs: &[Value]) -> anyhow::Result<(String, bool)> {
    if jobs.iter().any(|j| text(j, "ID") == prefix) {
        return Ok((prefix.to_owned(), true));
    }
    match jobs {
        [] => bail!("No job(s) with prefix or id {prefix:?} found"),
        [one] => Ok((text(one, "ID").to_owned(), false)),
        _ => bail!("Prefix matched multiple jobs\n\n{}", format::job_list(jobs)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_exact_id_wins_over_longer_matches_and_one_match_is_enough() {
        let jobs = [json!({"ID": "web"}), json!({"ID": "web-2"})];
        assert_eq!(pick_job("web", &jobs).unwrap(), ("web".to_owned(), true));
        assert_eq!(pick_job("web-", &jobs[1..]).unwrap(), ("web-2".to_owned(), false));
        let evals = vec![json!({"ID": "ab12"}), json!({"ID": "ab"})];
        assert_eq!(pick(Kind::Eval, "ab", evals, false).unwrap(), json!({"ID": "ab"}));
    }

    #[test]
    fn no_match_and_ambiguous_matches_say_so_as_nomad_does() {
        assert_eq!(pick_job("x", &[]).unwrap_err().to_string(), "No job(s) with prefix or id \"x\" found");
        let e = pick(Kind::Alloc, "ff", vec![], false).unwrap_err();
        assert_eq!(e.to_string(), "No allocation(s) with prefix or id \"ff\" found");
        let e = pick(Kind::Node, "ff", vec![], false).unwrap_err();
        assert_eq!(e.to_string(), "No node(s) with prefix \"ff\" found");
        let jobs = [
            json!({"ID": "amb-a", "Type": "service", "Priority": 50, "Status": "pending"}),
            json!({"ID": "amb-b", "Type": "batch", "Priority": 50, "Status": "pending"}),
        ];
        let e = pick_job("amb", &jobs).unwrap_err().to_string();
        assert!(
            e.starts_with("Prefix matched multiple jobs\n\nID     Type     Priority  Status   Submit Date\namb-a"),
            "{e}"
        );
        let evals = vec![
            json!({"ID": "ab12cd34-0000", "Priority": 50, "TriggeredBy": "job-register", "JobID": "web", "Status": "complete"}),
            json!({"ID": "ab99cd34-0000", "Priority": 50, "TriggeredBy": "queued-allocs", "JobID": "web", "Status": "blocked",
                   "FailedTGAllocs": {"g": {}}}),
        ];
        assert_eq!(
            pick(Kind::Eval, "ab", evals, false).unwrap_err().to_string(),
            "Prefix matched multiple evaluations\n\n\
             ID        Priority  Triggered By   Job ID  Status    Placement Failures\n\
             ab12cd34  50        job-register   web     complete  false\n\
             ab99cd34  50        queued-allocs  web     blocked   true"
        );
    }
}
