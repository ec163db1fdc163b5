//! `stead`: one binary that is a server, a client, or both, plus the CLI.
//!
//! Today: `stead agent -dev` opens the store (embedded, in memory or durable under
//! `-data-dir`). The HTTP/gRPC APIs, scheduler workers, server duties and the client arrive
//! with their issues; see docs/ARCHITECTURE.md. Start reading at `cli/mod.rs`.

mod cli;
#[cfg(not(madsim))]
mod http;

use std::process::ExitCode;

#[cfg(not(madsim))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
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
