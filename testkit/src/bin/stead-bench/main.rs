//! `stead-bench`: stead's benchmarks. Each prints human-readable lines on stderr and, as the
//! last line of stdout, one JSON object with its figures.
//!
//! * `stead-bench store …` — the embedded store's commit throughput (`store.rs`).
//! * `stead-bench sched …` — scheduling throughput end to end (`sched.rs`).
//! * `stead-bench api …` — the HTTP API of a dev agent under many connections (`api.rs`).

#![cfg_attr(madsim, allow(dead_code, unused_imports))]

#[cfg(not(madsim))]
mod api;
#[cfg(not(madsim))]
mod sched;
#[cfg(not(madsim))]
mod store;

#[cfg(not(madsim))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: stead-bench <benchmark> [options]   (stead-bench <benchmark> --help for its options)\n\
    \n\
    store   the embedded store's commit throughput with durable group commit\n\
    sched   scheduling throughput end to end: placements per second\n\
    api     the HTTP API of a dev agent under many concurrent connections: requests per second, p99";

#[cfg(madsim)]
fn main() {
    eprintln!("stead-bench does not run under madsim");
}

#[cfg(not(madsim))]
fn main() {
    stead_server::allocator::configure();
    match std::env::args().nth(1).as_deref() {
        Some("store") => store::main(),
        Some("sched") => sched::main(),
        Some("api") => api::main(),
        Some("-h" | "--help") => println!("{USAGE}"),
        Some(other) => {
            eprintln!("stead-bench: unknown benchmark {other:?}\n\n{USAGE}");
            std::process::exit(2)
        }
        None => {
            eprintln!("{USAGE}");
            std::process::exit(2)
        }
    }
}
