//! `stead agent`: today `-dev`, which opens the embedded store (in memory, or durable under
//! `-data-dir`) and holds it until Ctrl-C.

use std::path::PathBuf;

use anyhow::{Context, bail};
use stead_store::embedded::{self, EmbeddedOptions};
use stead_store::{Database, Error};

use super::flags::{self, Spec};

const SPEC: Spec = Spec { bools: &["dev"], values: &["data-dir"] };

pub const USAGE: &str = "\
Usage: stead agent -dev [-data-dir DIR]

  Runs a development agent on the embedded store: in memory, or durable under DIR.
";

#[derive(Debug, PartialEq)]
pub struct Options {
    pub data_dir: Option<PathBuf>,
}

pub fn parse(args: &[String]) -> anyhow::Result<Options> {
    let parsed = flags::parse("agent", &SPEC, args)?;
    if !parsed.flag("dev") {
        bail!("agent: only -dev mode exists so far (servers and clients arrive in later releases)\n\n{USAGE}");
    }
    if let Some(extra) = parsed.positionals.first() {
        bail!("agent: unexpected argument {extra:?}\n\n{USAGE}");
    }
    Ok(Options { data_dir: parsed.value("data-dir").map(PathBuf::from) })
}

/// Counts agent starts in the store: a real write through the transaction layer, and with
/// `-data-dir` a visible proof that the store survives restarts.
pub async fn record_start(db: &Database) -> anyhow::Result<i64> {
    let key = stead_store::tuple::pack(&("agent", "starts"));
    db.run(|tx, _| {
        let key = key.clone();
        async move {
            tx.atomic_add(&key, 1);
            Ok::<_, Error>(())
        }
    })
    .await
    .context("recording the agent start")?;
    let tx = db.create_transaction()?;
    let value = tx.get(&key).await?.context("the start counter is missing right after it was written")?;
    Ok(i64::from_le_bytes(value.as_ref().try_into().context("the start counter is not 8 bytes")?))
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let where_ = match &options.data_dir {
        Some(dir) => format!("embedded, durable in {}", dir.display()),
        None => "embedded, in memory (use -data-dir DIR to keep state)".to_string(),
    };
    let db = embedded::open(&EmbeddedOptions { data_dir: options.data_dir }).context("opening the store")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn agent_flags_parse_in_nomad_style() {
        assert_eq!(parse(&args("-dev")).unwrap(), Options { data_dir: None });
        assert_eq!(parse(&args("-dev -data-dir /tmp/x")).unwrap(), Options { data_dir: Some("/tmp/x".into()) });
        assert_eq!(parse(&args("--dev --data-dir=/d")).unwrap(), Options { data_dir: Some("/d".into()) });
        assert!(parse(&args("-dev -bogus")).unwrap_err().to_string().contains("unknown flag"));
        assert!(parse(&args("-data-dir")).unwrap_err().to_string().contains("needs a value"));
        assert!(parse(&[]).is_err());
    }

    #[tokio::test]
    async fn agent_start_counter_counts_each_start() {
        let db = embedded::open_in_memory();
        assert_eq!(record_start(&db).await.unwrap(), 1);
        assert_eq!(record_start(&db).await.unwrap(), 2);
    }
}
