//! The command line: Nomad's verbs and flag style. Each command parses its own flags
//! (`flags.rs`) and prints its own output; errors come back to `main` as `anyhow` errors.

pub mod agent;
pub mod flags;
pub mod job;

pub const USAGE: &str = "\
Usage: stead <command> [options]

Commands:
    agent -dev [-data-dir DIR]   Run a development agent (embedded store; in memory unless -data-dir)
    job run -output <file>       Print a job file as Nomad API JSON, with defaults applied
    job validate <file>          Check a job file (HCL2 or JSON)
    job init [file]              Write an example job file
    version                      Print the version
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
        other => anyhow::bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}
