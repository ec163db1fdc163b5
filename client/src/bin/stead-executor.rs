//! The raw_exec executor as a binary of its own, for this crate's tests; the agent runs
//! the same [`stead_client::executor::main`] as `stead executor <spec-file>`.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    stead_client::executor::main(&args)
}
