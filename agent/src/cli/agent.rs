//! `stead agent`: today `-dev`: the embedded store (in memory, or durable under
//! `-data-dir`), the scheduler workers and the HTTP API, in one process, until Ctrl-C.

use std::path::PathBuf;

use anyhow::{Context, bail};
#[cfg(not(madsim))]
use stead_store::embedded::{self, EmbeddedOptions};
use stead_store::{Database, Error};

use super::flags::{self, Spec};

const SPEC: Spec = Spec { bools: &["dev"], values: &["data-dir", "bind", "http-port", "http-max-body-bytes"] };

pub const USAGE: &str = "\
Usage: stead agent -dev [-data-dir DIR] [-bind ADDR] [-http-port PORT]

  Runs a development agent: the embedded store (in memory, or durable under DIR), the
  scheduler workers and the HTTP API on ADDR:PORT (default 127.0.0.1:4646; port 0 picks
  a free one).

  -http-max-body-bytes N   refuse request bodies over N bytes with 413 (default 16 MiB)
";

/// Request bodies above this many bytes are refused with 413 (`-http-max-body-bytes`).
const BODY_LIMIT_DEFAULT: usize = 16 * 1024 * 1024;

#[derive(Debug, PartialEq)]
pub struct Options {
    pub data_dir: Option<PathBuf>,
    pub bind: String,
    pub http_port: u16,
    pub body_limit: usize,
}

pub fn parse(args: &[String]) -> anyhow::Result<Options> {
    let parsed = flags::parse("agent", &SPEC, args)?;
    if !parsed.flag("dev") {
        bail!("agent: only -dev mode exists so far (servers and clients arrive in later releases)\n\n{USAGE}");
    }
    if let Some(extra) = parsed.positionals.first() {
        bail!("agent: unexpected argument {extra:?}\n\n{USAGE}");
    }
    let http_port = match parsed.value("http-port") {
        None => 4646,
        Some(p) => p.parse().with_context(|| format!("agent: -http-port {p:?} is not a port number (0-65535)"))?,
    };
    let body_limit = match parsed.value("http-max-body-bytes") {
        None => BODY_LIMIT_DEFAULT,
        Some(n) => n.parse().with_context(|| format!("agent: -http-max-body-bytes {n:?} is not a byte count"))?,
    };
    Ok(Options {
        data_dir: parsed.value("data-dir").map(PathBuf::from),
        bind: parsed.value("bind").unwrap_or("127.0.0.1").to_owned(),
        http_port,
        body_limit,
    })
}

/// Counts agent starts in the store: a real write through the transaction layer, and with
/// `-data-dir` a visible proof that the store survives restarts.
#[cfg_attr(madsim, allow(dead_code))]
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

#[cfg(madsim)]
pub async fn run(_options: Options) -> anyhow::Result<()> {
    bail!("agent: the agent does not run inside the simulator (stead-sim drives stead-server directly)")
}

#[cfg(not(madsim))]
pub async fn run(options: Options) -> anyhow::Result<()> {
    use std::sync::Arc;

    let where_ = match &options.data_dir {
        Some(dir) => format!("embedded, durable in {}", dir.display()),
        None => "embedded, in memory (use -data-dir DIR to keep state)".to_string(),
    };
    let db = embedded::open(&EmbeddedOptions { data_dir: options.data_dir.clone() }).context("opening the store")?;
    let starts = record_start(&db).await?;
    let store = stead_server::Store::new(db);
    let env = stead_server::Env::system();
    let registry = stead_server::metrics::Registry::new();
    let metrics = stead_server::metrics::SchedMetrics::new(&registry).context("registering metrics")?;
    let config = stead_server::worker::WorkerConfig { name: "dev".to_owned(), ..Default::default() };
    let sched = config.sched.clone();
    let workers = stead_server::worker::start(store.clone(), env.clone(), config, metrics, None);
    workers.warm_up().await.context("loading the cluster into the scheduler workers")?;

    let listener = tokio::net::TcpListener::bind((options.bind.as_str(), options.http_port))
        .await
        .with_context(|| format!("agent: listening on {}:{}", options.bind, options.http_port))?;
    let addr = listener.local_addr().context("agent: the listener's address")?;
    let state = Arc::new(crate::http::ApiState {
        store,
        env,
        sched,
        cluster_seed: 0,
        server_addr: format!("{}:{}", addr.ip(), addr.port()),
        region: "global".to_owned(),
        datacenter: "dc1".to_owned(),
        node_name: "dev".to_owned(),
        registry,
        plan_cache: tokio::sync::Mutex::new(stead_server::snapshot::ClusterCache::new()),
    });
    let app = crate::http::router(state, options.body_limit);
    println!("==> stead agent started in dev mode");
    println!("    HTTP API: http://{addr}");
    println!("    store: {where_}");
    println!("    starts recorded in this store: {starts}");
    println!("    (the client, which runs tasks, arrives in a later release: jobs wait for nodes)");
    println!("==> press Ctrl-C to stop");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving HTTP")?;
    println!("==> stopping");
    workers.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use stead_store::embedded;

    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn agent_flags_parse_in_nomad_style() {
        let dev = |data_dir: Option<&str>| Options {
            data_dir: data_dir.map(PathBuf::from),
            bind: "127.0.0.1".to_owned(),
            http_port: 4646,
            body_limit: BODY_LIMIT_DEFAULT,
        };
        assert_eq!(parse(&args("-dev")).unwrap(), dev(None));
        assert_eq!(parse(&args("-dev -data-dir /tmp/x")).unwrap(), dev(Some("/tmp/x")));
        assert_eq!(parse(&args("--dev --data-dir=/d")).unwrap(), dev(Some("/d")));
        let o = parse(&args("-dev -bind 0.0.0.0 -http-port 0")).unwrap();
        assert_eq!((o.bind.as_str(), o.http_port), ("0.0.0.0", 0));
        assert!(parse(&args("-dev -http-port 70000")).unwrap_err().to_string().contains("-http-port"));
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
