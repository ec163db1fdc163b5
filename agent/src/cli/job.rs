//! `stead job ...`: the commands that need no server (`run -output`, `validate`, `init`),
//! `job run` itself (parse locally, submit, follow the evaluation), and the dispatch to
//! the other server commands (`job_plan.rs`, `job_read.rs`, `job_write.rs`).
//! Job files are HCL2 (`stead_jobspec`) or Nomad's API JSON, told apart by a `.json`
//! name, a leading `{` or `-json`; `-` reads standard input.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use stead_jobspec::{OsEnv, SourceMap, VarInputs};
use stead_store::model::{self, Job};

use super::api::{self, Client};
use super::flags::{self, Spec};
use super::{job_plan, job_read, job_write, monitor, server};

pub const USAGE: &str = "\
Usage: stead job <subcommand> [options] [args]

Subcommands:
    run [-detach] [-check-index N] [-var k=v] [-var-file F] [-verbose] <file|->
                                 Submit a job and follow its evaluation (-output: print it as
                                 Nomad API JSON with defaults, without a server)
    plan [-diff=false] [-verbose] <file|->
                                 Show what submitting the job would change (exit 0: nothing
                                 placed or stopped, 1: allocations change, 255: error)
    status [-json] [-verbose] [-short] [job]
                                 List jobs, or show one with its summary and allocations
    allocs [-json] [-verbose] [-all] <job>
                                 List a job's allocations
    history [-p] [-json] [-version N] <job>
                                 List a job's versions (-p: with the diff to the one before)
    inspect [-json] [-version N] <job>
                                 Print a job as API JSON ({\"Job\": ...})
    revert [-detach] [-verbose] <job> <version>
                                 Submit an earlier version of a job again
    stop [-purge] [-detach] [-yes] [-verbose] <job>
                                 Stop a job (-purge: remove it from the state)
    dispatch [-meta k=v]... [-idempotency-token T] [-detach] <job> [payload-file|-]
                                 Start an instance of a parameterized job
    periodic force [-detach] <job>
                                 Launch a periodic job now
    scale [-detach] <job> [<group>] <count>
                                 Change a task group's count
    validate [-var k=v] [-var-file F] <file|->
                                 Check a job file; exit 1 with every error found
    init [file]                  Write an example job file (example.nomad.hcl)

Server options (every subcommand that talks to an agent):
    -address ADDR     the agent's HTTP API (STEAD_ADDR, NOMAD_ADDR; http://127.0.0.1:4646)
    -token TOKEN      the ACL token, sent as X-Nomad-Token (STEAD_TOKEN, NOMAD_TOKEN)
    -namespace NS     the namespace (STEAD_NAMESPACE, NOMAD_NAMESPACE; default)
";

const EXAMPLE: &str = include_str!("example.nomad.hcl");
const EXAMPLE_FILE: &str = "example.nomad.hcl";

const RUN: Spec = Spec {
    bools: &["output", "detach", "verbose", "json"],
    values: &["var", "var-file", "check-index", "eval-priority"],
};
const VALIDATE: Spec = Spec { bools: &["json"], values: &["var", "var-file"] };
const INIT: Spec = Spec { bools: &[], values: &[] };

pub fn run(args: &[String]) -> anyhow::Result<u8> {
    let Some((sub, rest)) = args.split_first() else {
        print!("{USAGE}");
        return Ok(1);
    };
    match sub.as_str() {
        "run" => {
            let parsed = flags::parse_with("job run", &[&RUN, &api::GLOBALS], rest)?;
            if !parsed.flag("output") {
                return Ok(server(submit(&parsed), 1));
            }
            let (mut job, _) = load(&parsed)?;
            job.canonicalize();
            println!("{}", model::job_to_api_json(&job));
            Ok(0)
        }
        "plan" => Ok(server(job_plan::plan(rest), 255)),
        "status" => Ok(server(job_read::status(rest), 1)),
        "allocs" => Ok(server(job_read::allocs(rest), 1)),
        "history" => Ok(server(job_read::history(rest), 1)),
        "inspect" => Ok(server(job_read::inspect(rest), 1)),
        "revert" => Ok(server(job_write::revert(rest), 1)),
        "stop" => Ok(server(job_write::stop(rest), 1)),
        "dispatch" => Ok(server(job_write::dispatch(rest), 1)),
        "periodic" => Ok(server(job_write::periodic(rest), 1)),
        "scale" => Ok(server(job_write::scale(rest), 1)),
        "validate" => {
            let parsed = flags::parse("job validate", &VALIDATE, rest)?;
            let (mut job, positions) = load(&parsed)?;
            job.canonicalize();
            match job.validate() {
                Ok(()) => {
                    println!("Job validation successful");
                    Ok(0)
                }
                Err(errors) => {
                    println!("Job validation errors:");
                    for e in errors {
                        // HCL: where in the file; JSON: the field path says where.
                        match &positions {
                            Some(map) => println!("  * {}", map.validation_error(&e)),
                            None => println!("  * {e}"),
                        }
                    }
                    Ok(1)
                }
            }
        }
        "init" => {
            let parsed = flags::parse("job init", &INIT, rest)?;
            let file = parsed.positionals.first().map_or(EXAMPLE_FILE, String::as_str);
            init(Path::new(file))?;
            println!("Example job file written to {file}");
            Ok(0)
        }
        "help" | "-h" | "-help" | "--help" => {
            print!("{USAGE}");
            Ok(0)
        }
        other => bail!("job: unknown subcommand {other:?}\n\n{USAGE}"),
    }
}

/// The prefix of the server's message when `-check-index` did not match.
const ENFORCE_INDEX_ERROR: &str = "Enforcing job modify index";

/// `job run` without `-output`: submit, then follow the evaluation unless `-detach`.
fn submit(parsed: &flags::Parsed) -> anyhow::Result<u8> {
    let client = Client::from_flags(parsed);
    let (job, client) = load_for_server(parsed, &client)?;
    let mut body = json!({"Job": job});
    let enforce = match parsed.value("check-index") {
        None => false,
        Some(n) => {
            let index: u64 =
                n.parse().with_context(|| format!("-check-index {n:?} is not a job modify index (0 or more)"))?;
            body["EnforceIndex"] = json!(true);
            body["JobModifyIndex"] = json!(index);
            true
        }
    };
    if let Some(p) = parsed.value("eval-priority") {
        let priority: u8 = p.parse().with_context(|| format!("-eval-priority {p:?} is not a priority (1-100)"))?;
        body["EvalPriority"] = json!(priority);
    }
    let answer = match client.post("/v1/jobs", &[], &body) {
        Ok(a) => a,
        Err(e) if enforce && e.body().contains(ENFORCE_INDEX_ERROR) => {
            eprintln!("{}", e.body());
            eprintln!("Job not updated");
            return Ok(1);
        }
        Err(e @ api::ApiError::Unreachable { .. }) => {
            bail!("Error submitting job: {e}\n(job run -output prints the job as API JSON without an agent)")
        }
        Err(e) => return Err(e).context("Error submitting job"),
    };
    let r = &answer.value;
    print_warnings(r);
    let eval = super::format::text(r, "EvalID");
    if parsed.flag("detach") || eval.is_empty() {
        println!("Job registration successful");
        if !eval.is_empty() {
            println!("Evaluation ID: {eval}");
        }
        return Ok(0);
    }
    monitor::monitor(&client, eval, parsed.flag("verbose"))
}

/// `Job Warnings:` and the server's warnings, when it has some.
pub fn print_warnings(answer: &Value) {
    let warnings = super::format::text(answer, "Warnings").trim();
    if !warnings.is_empty() {
        println!("Job Warnings:\n{warnings}\n");
    }
}

/// The job file of `parsed`, as the server gets it: in the namespace `-namespace` names
/// unless the file names one, canonicalized; and a client for that namespace.
pub fn load_for_server(parsed: &flags::Parsed, client: &Client) -> anyhow::Result<(Value, Client)> {
    let (mut job, _) = load(parsed).context("Error getting job struct")?;
    if job.namespace.is_empty() {
        job.namespace = client.namespace().to_owned();
    }
    job.canonicalize();
    let client = client.with_namespace(&job.namespace);
    let value = serde_json::to_value(&job).context("encoding the job")?;
    Ok((value, client))
}

fn init(path: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("job init: {} already exists; remove it or name another file", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("job init: creating {}", path.display())),
    };
    file.write_all(EXAMPLE.as_bytes()).with_context(|| format!("job init: writing {}", path.display()))
}

/// Reads, parses and decodes the job file named by the one positional argument; for HCL,
/// also where each field came from.
pub fn load(parsed: &flags::Parsed) -> anyhow::Result<(Job, Option<SourceMap>)> {
    let [file] = parsed.positionals.as_slice() else {
        bail!("expected exactly one job file (or - for standard input), got {}", parsed.positionals.len());
    };
    let (name, source) = if file == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading the job from standard input")?;
        ("<stdin>".to_string(), s)
    } else {
        let s = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
        (file.clone(), s)
    };
    let mut vars = VarInputs::default();
    for (flag, value) in &parsed.in_order {
        vars = match flag.as_str() {
            "var" => vars.flag_arg(value).map_err(|e| anyhow::anyhow!("{e}"))?,
            "var-file" => {
                let contents = std::fs::read_to_string(value).with_context(|| format!("reading -var-file {value}"))?;
                vars.file(value.clone(), contents)
            }
            _ => vars,
        };
    }
    if parsed.flag("json") {
        let job = model::job_from_api_json(&source).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        return Ok((job, None));
    }
    decode(&name, &source, &vars)
}

fn is_json(name: &str, source: &str) -> bool {
    name.ends_with(".json") || source.trim_start().starts_with('{')
}

/// A job from HCL2 or API JSON source, and for HCL its source map. Errors name the file
/// and where in it.
pub fn decode(name: &str, source: &str, vars: &VarInputs) -> anyhow::Result<(Job, Option<SourceMap>)> {
    if is_json(name, source) {
        let job = model::job_from_api_json(source).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        return Ok((job, None));
    }
    let (mut value, positions) =
        stead_jobspec::parse_hcl_with_positions(source, name, vars, &OsEnv).map_err(|e| anyhow::anyhow!("{e}"))?;
    let job = value.get_mut("Job").map(serde_json::Value::take).unwrap_or_default();
    let job = model::from_api_value::<Job>(job).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    Ok((job, Some(positions)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_job_parses_and_validates_in_dev_and_prod() {
        let (mut dev, _) = decode("example.nomad.hcl", EXAMPLE, &VarInputs::default()).unwrap();
        dev.canonicalize();
        dev.validate().unwrap();
        let (mut prod, _) =
            decode("example.nomad.hcl", EXAMPLE, &VarInputs::default().flag("environment", "prod")).unwrap();
        prod.canonicalize();
        prod.validate().unwrap();
        let count = |j: &Job| serde_json::to_value(j).unwrap()["TaskGroups"][0]["Count"].clone();
        assert_eq!(count(&dev), 1);
        assert_eq!(count(&prod), 3);
    }

    #[test]
    fn json_and_hcl_of_one_job_decode_to_the_same_record() {
        let (mut from_hcl, _) = decode("example.nomad.hcl", EXAMPLE, &VarInputs::default()).unwrap();
        from_hcl.canonicalize();
        let json = model::job_to_api_json(&from_hcl);
        let (mut from_json, _) = decode("job.json", &json, &VarInputs::default()).unwrap();
        from_json.canonicalize();
        assert_eq!(serde_json::to_value(&from_hcl).unwrap(), serde_json::to_value(&from_json).unwrap());
    }

    #[test]
    fn a_bad_variable_value_is_an_error_naming_the_file() {
        let err =
            decode("example.nomad.hcl", EXAMPLE, &VarInputs::default().flag("environment", "staging")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("example.nomad.hcl:") && text.contains("dev or prod"), "{text}");
    }
}
