//! `stead`: one binary that is a server, a client, or both, plus the CLI.
//!
//! Today it opens the store as `stead agent -dev` will: embedded, in memory or durable
//! under `-data-dir`. The HTTP/gRPC APIs, scheduler workers, server duties and the client
//! arrive with their issues; see docs/ARCHITECTURE.md.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use stead_store::embedded::{self, EmbeddedOptions};
use stead_store::{Database, Error};

const USAGE: &str = "\
Usage: stead <command> [options]

Commands:
    agent -dev [-data-dir DIR]   Run a development agent (embedded store; in memory unless -data-dir)
    version                      Print the version
";

#[derive(Debug, PartialEq)]
enum Command {
    AgentDev { data_dir: Option<PathBuf> },
    Version,
    Help,
}

/// Nomad's CLI takes single-dash long flags (`-dev`, `-data-dir DIR`, `-data-dir=DIR`);
/// double dashes are accepted too.
fn parse(args: &[String]) -> anyhow::Result<Command> {
    let Some((command, rest)) = args.split_first() else { return Ok(Command::Help) };
    match command.as_str() {
        "version" | "-version" | "--version" => Ok(Command::Version),
        "help" | "-h" | "-help" | "--help" => Ok(Command::Help),
        "agent" => {
            let (mut dev, mut data_dir) = (false, None);
            let mut it = rest.iter();
            while let Some(arg) = it.next() {
                let flag = arg.trim_start_matches('-');
                let (name, inline) = match flag.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (flag, None),
                };
                match name {
                    "dev" => dev = true,
                    "data-dir" => {
                        let value = match inline {
                            Some(v) => v,
                            None => it.next().cloned().context("-data-dir needs a directory")?,
                        };
                        data_dir = Some(PathBuf::from(value));
                    }
                    _ => bail!("agent: unknown flag {arg:?}\n\n{USAGE}"),
                }
            }
            if !dev {
                bail!("agent: only -dev mode exists so far (servers and clients arrive in later releases)\n\n{USAGE}");
            }
            Ok(Command::AgentDev { data_dir })
        }
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

/// Counts agent starts in the store: a real write through the transaction layer, and with
/// `-data-dir` a visible proof that the store survives restarts.
async fn record_start(db: &Database) -> anyhow::Result<i64> {
    let key = stead_store::tuple::pack(&("agent", "starts"));
    let starts = db
        .run(|tx, _| {
            let key = key.clone();
            async move {
                tx.atomic_add(&key, 1);
                Ok::<_, Error>(())
            }
        })
        .await;
    starts.context("recording the agent start")?;
    let tx = db.create_transaction()?;
    let value = tx.get(&key).await?.context("the start counter is missing right after it was written")?;
    Ok(i64::from_le_bytes(value.as_ref().try_into().context("the start counter is not 8 bytes")?))
}

async fn agent_dev(data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let where_ = match &data_dir {
        Some(dir) => format!("embedded, durable in {}", dir.display()),
        None => "embedded, in memory (use -data-dir DIR to keep state)".to_string(),
    };
    let db = embedded::open(&EmbeddedOptions { data_dir }).context("opening the store")?;
    let starts = record_start(&db).await?;
    println!("==> stead agent started in dev mode");
    println!("    store: {where_}");
    println!("    starts recorded in this store: {starts}");
    println!("    (the HTTP API, scheduler workers and the client arrive in later releases)");
    println!("==> press Ctrl-C to stop");
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    println!("==> stopping");
    drop(db);
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(1);
        }
    };
    let result = match command {
        Command::Help => {
            print!("{USAGE}");
            Ok(())
        }
        Command::Version => {
            println!("stead v{}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::AgentDev { data_dir } => agent_dev(data_dir).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn agent_flags_parse_in_nomad_style() {
        assert_eq!(parse(&args("agent -dev")).unwrap(), Command::AgentDev { data_dir: None });
        assert_eq!(
            parse(&args("agent -dev -data-dir /tmp/x")).unwrap(),
            Command::AgentDev { data_dir: Some("/tmp/x".into()) }
        );
        assert_eq!(parse(&args("agent --dev --data-dir=/d")).unwrap(), Command::AgentDev { data_dir: Some("/d".into()) });
        assert!(parse(&args("agent -dev -bogus")).unwrap_err().to_string().contains("unknown flag"));
        assert!(parse(&args("agent -data-dir")).unwrap_err().to_string().contains("needs a directory"));
        assert!(parse(&args("agent")).is_err());
        assert!(parse(&args("frobnicate")).unwrap_err().to_string().contains("unknown command"));
        assert_eq!(parse(&[]).unwrap(), Command::Help);
    }

    #[tokio::test]
    async fn agent_start_counter_counts_each_start() {
        let db = embedded::open_in_memory();
        assert_eq!(record_start(&db).await.unwrap(), 1);
        assert_eq!(record_start(&db).await.unwrap(), 2);
    }
}
