//! `stead-bench`: stead's benchmarks. Each prints human-readable lines on stderr and, as the
//! last line of stdout, one JSON object with its figures.
//!
//! * `stead-bench store …` — the embedded store's commit throughput (`store.rs`).
//! * `stead-bench sched …` — scheduling throughput end to end (`sched.rs`).

#![cfg_attr(madsim, allow(dead_code, unused_imports))]

#[cfg(not(madsim))]
mod sched;
#[cfg(not(madsim))]
mod store;

#[cfg(not(madsim))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(madsim)]
fn main() {
    eprintln!("stead-bench does not run under madsim");
}

#[cfg(not(madsim))]
fn main() {
    stead_server::allocator::configure();
    match std::env::args().nth(1).as_deref() {
        Some("sched") => sched::main(),
        _ => store::main(),
    }
}
