//! The command line: Nomad's verbs and flag style. Each command parses its own flags
//! (`flags.rs`) and prints its own output. Commands that need no server return errors to
//! `main` as `anyhow` errors; the server commands (`api.rs` is their HTTP client) print
//! their errors as Nomad's CLI does (to stderr, with what was being done) and exit with
//! Nomad's codes, through [`server`].

pub mod agent;
pub mod alloc;
pub mod api;
pub mod eval;
pub mod flags;
pub mod format;
pub mod job;
pub mod job_plan;
pub mod job_read;
pub mod job_write;
pub mod lookup;
pub mod monitor;
pub mod node;

use std::io::{BufRead, Write};

pub const USAGE: &str = "\
Usage: stead <command> [options]

Commands:
    agent -dev [-data-dir DIR]   Run a development agent (embedded store; in memory unless -data-dir)
    job <subcommand>             Jobs: run, plan, status, allocs, history, inspect, revert, stop,
                                 dispatch, periodic force, scale (on an agent); run -output,
                                 validate, init (without one). `stead job help` lists them
    alloc <subcommand>           Allocations: status, logs, stop
    eval status <id>             Show an evaluation
    node <subcommand>            Nodes: status, drain, eligibility
    version                      Print the version

Commands that talk to an agent take -address (STEAD_ADDR, NOMAD_ADDR; default
http://127.0.0.1:4646), -token (STEAD_TOKEN, NOMAD_TOKEN) and -namespace.
";

/// Runs the command in `args` (without the program name); returns the process exit code.
pub async fn run(args: &[String]) -> anyhow::Result<u8> {
    let Some((command, rest)) = args.split_first() else {
        print!("{USAGE}");
        return Ok(0);
    };
    match command.as_str() {
        "version" | "-version" | "--version" => {
            println!("stead v{}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        "help" | "-h" | "-help" | "--help" => {
            print!("{USAGE}");
            Ok(0)
        }
        "agent" => {
            agent::run(agent::parse(rest)?).await?;
            Ok(0)
        }
        "job" => job::run(rest),
        "alloc" => alloc::run(rest),
        "eval" => eval::run(rest),
        "node" => node::run(rest),
        other => anyhow::bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

/// The exit code of a server command: its own, or `error_code` after printing its error.
pub fn server(result: anyhow::Result<u8>, error_code: u8) -> u8 {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            error_code
        }
    }
}

/// What a user answered to a `[y/N]` question.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Yes,
    /// Nothing, or anything starting with `n`.
    No,
    /// `yes`, `Yes`...: Nomad wants exactly `y`.
    NotExactlyY,
    Unclear,
}

pub fn decide_answer(line: &str) -> Answer {
    let answer = line.trim();
    match answer.chars().next().map(|c| c.to_ascii_lowercase()) {
        None | Some('n') => Answer::No,
        _ if answer == "y" => Answer::Yes,
        Some('y') if answer.len() > 1 => Answer::NotExactlyY,
        Some(_) => Answer::Unclear,
    }
}

/// Asks `question` on stdout and reads the answer from stdin (end of input: no).
pub fn ask(question: &str) -> Answer {
    print!("{question} ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(_) => decide_answer(&line),
        Err(_) => Answer::No,
    }
}

/// Asks before an action; `Ok(None)` to go on, `Ok(Some(code))` to stop with that exit
/// code after saying why (as Nomad: no → 0, an unclear answer → 1).
pub fn confirm(question: &str, cancelled: &str) -> Option<u8> {
    match ask(question) {
        Answer::Yes => None,
        Answer::No => {
            println!("{cancelled}");
            Some(0)
        }
        Answer::NotExactlyY => {
            println!("For confirmation, an exact ‘y’ is required.");
            Some(0)
        }
        Answer::Unclear => {
            println!("No confirmation detected. For confirmation, an exact 'y' is required.");
            Some(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_exact_y_confirms() {
        assert_eq!(decide_answer("y\n"), Answer::Yes);
        assert_eq!(decide_answer(""), Answer::No);
        assert_eq!(decide_answer("No\n"), Answer::No);
        assert_eq!(decide_answer("yes\n"), Answer::NotExactlyY);
        assert_eq!(decide_answer("Yes\n"), Answer::NotExactlyY);
        assert_eq!(decide_answer("Y\n"), Answer::Unclear);
        assert_eq!(decide_answer("maybe\n"), Answer::Unclear);
    }
}
