//! `stead job ...` commands that need no server: `run -output`, `validate`, `init`.
//! Job files are HCL2 (`stead_jobspec`) or Nomad's API JSON, told apart by a `.json`
//! name or a leading `{`; `-` reads standard input.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use stead_jobspec::{OsEnv, SourceMap, VarInputs};
use stead_store::model::{self, Job};

use super::flags::{self, Spec};

pub const USAGE: &str = "\
Usage: stead job <subcommand> [options] [args]

Subcommands:
    run -output [-var k=v] [-var-file F] <file|->   Print the job as Nomad API JSON, with defaults
    validate [-var k=v] [-var-file F] <file|->      Check a job file; exit 1 with every error found
    init [file]                                     Write an example job file (example.nomad.hcl)
";

const EXAMPLE: &str = include_str!("example.nomad.hcl");
const EXAMPLE_FILE: &str = "example.nomad.hcl";

const RUN: Spec = Spec { bools: &["output"], values: &["var", "var-file"] };
const VALIDATE: Spec = Spec { bools: &[], values: &["var", "var-file"] };
const INIT: Spec = Spec { bools: &[], values: &[] };

pub fn run(args: &[String]) -> anyhow::Result<u8> {
    let Some((sub, rest)) = args.split_first() else {
        print!("{USAGE}");
        return Ok(1);
    };
    match sub.as_str() {
        "run" => {
            let parsed = flags::parse("job run", &RUN, rest)?;
            if !parsed.flag("output") {
                bail!(
                    "job run: submitting a job needs a running server, which arrives with the agent; \
                     use -output to print the job as API JSON"
                );
            }
            let (mut job, _) = load(&parsed)?;
            job.canonicalize();
            println!("{}", model::job_to_api_json(&job));
            Ok(0)
        }
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
fn load(parsed: &flags::Parsed) -> anyhow::Result<(Job, Option<SourceMap>)> {
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
