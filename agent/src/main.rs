//! `stead`: one binary that is a server, a client, or both, plus the CLI.
//!
//! `stead agent` runs a server (store, workers, duties, HTTP and gRPC APIs), a client
//! (runs tasks) or both (`-dev`); the other commands are the CLI, which talks HTTP to an
//! agent. `stead executor SPEC` is the process that runs one raw_exec task and outlives
//! the client (`stead_client::executor`). Start reading at `cli/mod.rs`, then `run.rs`.

mod cli;
mod config;
#[cfg(not(madsim))]
mod http;
#[cfg(not(madsim))]
mod run;

use std::process::ExitCode;

#[cfg(not(madsim))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The executor runs before any runtime starts: it is a small process of its own.
    if args.first().map(String::as_str) == Some("executor") {
        return stead_client::executor::main(&args[1..]);
    }
    cli_main()
}

#[tokio::main]
async fn cli_main() -> ExitCode {
    stead_server::allocator::configure();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match cli::run(&args).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
