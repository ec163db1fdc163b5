//! The job commands that change state and then follow the evaluation they created (unless
//! `-detach`): `stop`, `revert`, `dispatch`, `periodic force`, `scale`.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{Context, bail};
use base64::Engine;
use serde_json::json;

use super::api::{Client, encode};
use super::flags::{Parsed, Spec};
use super::format::{self, kv, short, text};
use super::{confirm, job, lookup, monitor};

const STOP: Spec = Spec { bools: &["purge", "detach", "yes", "verbose"], values: &[] };
const REVERT: Spec = Spec { bools: &["detach", "verbose"], values: &[] };
const DISPATCH: Spec =
    Spec { bools: &["detach", "verbose"], values: &["meta", "idempotency-token", "id-prefix-template"] };
const PERIODIC: Spec = Spec { bools: &["detach", "verbose"], values: &[] };
const SCALE: Spec = Spec { bools: &["detach", "verbose"], values: &[] };

/// Nomad refuses dispatch payloads above this many bytes; so does the CLI, before sending.
const PAYLOAD_BYTES_MAX: usize = 16 * 1024;

use super::api::parse_command as parse;

fn job_path(id: &str, suffix: &str) -> String {
    format!("/v1/job/{}{suffix}", encode(id))
}

fn follow(client: &Client, parsed: &Parsed, eval: &str, detached: impl Fn(&str) -> String) -> anyhow::Result<u8> {
    monitor::after_write(client, eval, parsed.flag("detach"), parsed.flag("verbose"), detached)
}

pub fn stop(rest: &[String]) -> anyhow::Result<u8> {
    let (parsed, client) = parse("job stop", &STOP, rest)?;
    let [prefix] = parsed.positionals.as_slice() else {
        bail!("job stop: expected one job ID (or a prefix of one), got {} arguments", parsed.positionals.len());
    };
    let (id, exact) = lookup::job(&client, prefix)?;
    if !exact
        && !parsed.flag("yes")
        && let Some(code) = confirm(&format!("Are you sure you want to stop job {id:?}? [y/N]"), "Cancelling job stop")
    {
        return Ok(code);
    }
    let query = if parsed.flag("purge") { vec![("purge", "true".to_owned())] } else { vec![] };
    let answer = client.delete(&job_path(&id, ""), &query).context("Error deregistering job")?;
    follow(&client, &parsed, text(&answer.value, "EvalID"), str::to_owned)
}

pub fn revert(rest: &[String]) -> anyhow::Result<u8> {
    let (parsed, client) = parse("job revert", &REVERT, rest)?;
    let [prefix, version] = parsed.positionals.as_slice() else {
        bail!("job revert: expected a job and a version, got {} arguments", parsed.positionals.len());
    };
    let version: u64 = version.parse().with_context(|| {
        format!("The job version to revert to must be a number, not {version:?} (version tags are not supported)")
    })?;
    let (id, _) = lookup::job(&client, prefix)?;
    let answer = client
        .post(&job_path(&id, "/revert"), &[], &json!({"JobID": id, "JobVersion": version}))
        .context("Error reverting job")?;
    job::print_warnings(&answer.value);
    follow(&client, &parsed, text(&answer.value, "EvalID"), |e| format!("Evaluation ID: {e}"))
}

/// `-meta k=v` flags as a map.
fn meta(parsed: &Parsed) -> anyhow::Result<BTreeMap<String, String>> {
    parsed
        .all("meta")
        .iter()
        .map(|m| match m.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => bail!("Error parsing meta value: {m:?} is not key=value"),
        })
        .collect()
}

pub fn dispatch(rest: &[String]) -> anyhow::Result<u8> {
    let (parsed, client) = parse("job dispatch", &DISPATCH, rest)?;
    let (id, payload_file) = match parsed.positionals.as_slice() {
        [id] => (id, None),
        [id, file] => (id, Some(file)),
        other => bail!("job dispatch: expected a job and an optional payload file, got {} arguments", other.len()),
    };
    let payload = match payload_file.map(String::as_str) {
        None => None,
        Some("-") => {
            let mut bytes = Vec::new();
            std::io::stdin().read_to_end(&mut bytes).context("Error reading input data from standard input")?;
            Some(bytes)
        }
        Some(file) => Some(std::fs::read(file).with_context(|| format!("Error reading input data from {file}"))?),
    };
    if let Some(p) = &payload
        && p.len() > PAYLOAD_BYTES_MAX
    {
        bail!("Payload exceeds maximum size; {} > {PAYLOAD_BYTES_MAX}", p.len());
    }
    let mut body = json!({
        "Payload": payload.map(|p| base64::engine::general_purpose::STANDARD.encode(p)),
        "Meta": meta(&parsed)?,
    });
    if let Some(t) = parsed.value("id-prefix-template") {
        body["IdPrefixTemplate"] = json!(t);
    }
    let query: Vec<(&str, String)> =
        parsed.value("idempotency-token").map(|t| ("idempotency_token", t.to_owned())).into_iter().collect();
    let answer = client.post(&job_path(id, "/dispatch"), &query, &body).context("Failed to dispatch job")?;
    let r = &answer.value;
    let verbose = parsed.flag("verbose");
    let eval = text(r, "EvalID");
    let mut rows = vec![("Dispatched Job ID", text(r, "DispatchedJobID").to_owned())];
    if !eval.is_empty() {
        rows.push(("Evaluation ID", short(eval, verbose).to_owned()));
    }
    println!("{}", kv(&rows));
    if eval.is_empty() || parsed.flag("detach") {
        return Ok(0);
    }
    println!();
    monitor::monitor(&client, eval, verbose)
}

pub fn periodic(rest: &[String]) -> anyhow::Result<u8> {
    let Some(("force", rest)) = rest.split_first().map(|(s, r)| (s.as_str(), r)) else {
        bail!("Usage: stead job periodic force [-detach] [-verbose] <job>");
    };
    let (parsed, client) = parse("job periodic force", &PERIODIC, rest)?;
    let [prefix] = parsed.positionals.as_slice() else {
        bail!("job periodic force: expected one job ID, got {} arguments", parsed.positionals.len());
    };
    let (id, _) = lookup::job(&client, prefix)?;
    let answer =
        client.post(&job_path(&id, "/periodic/force"), &[], &json!({})).context("Error forcing periodic job")?;
    follow(&client, &parsed, text(&answer.value, "EvalID"), |e| {
        format!("Force periodic successful\nEvaluation ID: {e}")
    })
}

pub fn scale(rest: &[String]) -> anyhow::Result<u8> {
    let (parsed, client) = parse("job scale", &SCALE, rest)?;
    let (prefix, group, count) = match parsed.positionals.as_slice() {
        [job, count] => (job, None, count),
        [job, group, count] => (job, Some(group.clone()), count),
        other => bail!("job scale: expected <job> [<group>] <count>, got {} arguments", other.len()),
    };
    let count: u32 = count.parse().with_context(|| format!("Failed to convert count string to int: {count:?}"))?;
    let (id, _) = lookup::job(&client, prefix)?;
    let group = match group {
        Some(g) => g,
        None => {
            let job = client.get(&job_path(&id, ""), &[]).context("Error querying job")?.value;
            match format::list(&job, "TaskGroups") {
                [only] => text(only, "Name").to_owned(),
                _ => bail!("Job {id:?} has more than one task group; name the group to scale"),
            }
        }
    };
    let body = json!({
        "Count": count,
        "Target": {"Job": id, "Group": group, "Namespace": client.namespace()},
        "Message": "submitted using the stead CLI",
    });
    let answer = client.post(&job_path(&id, "/scale"), &[], &body).context("Error submitting scaling request")?;
    job::print_warnings(&answer.value);
    follow(&client, &parsed, text(&answer.value, "EvalID"), |e| format!("Evaluation ID: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_flags_become_a_map_and_a_flag_without_equals_is_an_error() {
        let args: Vec<String> = ["-meta", "a=1", "-meta", "b=x=y"].iter().map(|s| (*s).to_owned()).collect();
        let parsed = crate::cli::flags::parse("t", &DISPATCH, &args).unwrap();
        let m = meta(&parsed).unwrap();
        assert_eq!(m.get("a").map(String::as_str), Some("1"));
        assert_eq!(m.get("b").map(String::as_str), Some("x=y"));
        let bad = crate::cli::flags::parse("t", &DISPATCH, &["-meta".to_owned(), "nope".to_owned()]).unwrap();
        assert!(meta(&bad).unwrap_err().to_string().contains("\"nope\" is not key=value"));
    }
}
