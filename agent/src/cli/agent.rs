//! `stead agent`: `-dev` (a server and a client in one process, in memory unless
//! `-data-dir`), or `-config FILE` (HCL: a server, a client or both; see `config.rs`);
//! flags override the files. Runs until Ctrl-C (`run.rs`).

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::flags::{self, Spec};
use crate::config::AgentConfig;

const SPEC: Spec = Spec {
    bools: &["dev", "server", "client"],
    values: &[
        "config",
        "data-dir",
        "bind",
        "http-port",
        "rpc-port",
        "http-max-body-bytes",
        "servers",
        "node",
        "dc",
        "region",
        "node-class",
        "node-pool",
    ],
};

pub const USAGE: &str = "\
Usage: stead agent -dev | -config FILE [options]

  Runs a stead agent: a server (the store, the scheduler workers, the duties, the HTTP
  API and gRPC), a client (runs the tasks of its node), or both.

  -dev                     a server and a client in one process, in memory unless -data-dir,
                           on 127.0.0.1 (raw_exec and mock drivers)
  -config FILE             an HCL agent configuration (repeat to merge several)
  -server / -client        enable a server / a client (with -config or alone)
  -data-dir DIR            where state lives (server: DIR/server; client: DIR/client, DIR/alloc)
  -bind ADDR               listen on ADDR (default 127.0.0.1)
  -http-port PORT          HTTP API port (default 4646; 0 picks a free one)
  -rpc-port PORT           gRPC port (default 4647; 0 picks a free one)
  -servers A,B             a client's servers (gRPC host:port)
  -node NAME, -dc DC, -region R, -node-class C, -node-pool P
  -http-max-body-bytes N   refuse request bodies over N bytes with 413 (default 16 MiB)
";

pub fn parse(args: &[String]) -> anyhow::Result<AgentConfig> {
    let parsed = flags::parse("agent", &SPEC, args)?;
    if let Some(extra) = parsed.positionals.first() {
        bail!("agent: unexpected argument {extra:?}\n\n{USAGE}");
    }
    let files: Vec<PathBuf> = parsed.values.get("config").into_iter().flatten().map(PathBuf::from).collect();
    let dev = parsed.flag("dev");
    if !dev && files.is_empty() && !parsed.flag("server") && !parsed.flag("client") {
        bail!("agent: give -dev, -config FILE, -server or -client\n\n{USAGE}");
    }
    let mut config = if files.is_empty() && !dev {
        let mut c = AgentConfig::dev();
        c.dev = false;
        c.server = None;
        c.client = None;
        c
    } else {
        AgentConfig::load(&files, dev)?
    };
    let port = |name: &str, value: &str| -> anyhow::Result<u16> {
        value.parse().with_context(|| format!("agent: -{name} {value:?} is not a port number (0-65535)"))
    };
    if let Some(p) = parsed.value("http-port") {
        config.http_port = port("http-port", p)?;
    }
    if let Some(p) = parsed.value("rpc-port") {
        config.rpc_port = port("rpc-port", p)?;
    }
    if let Some(n) = parsed.value("http-max-body-bytes") {
        config.http_body_limit =
            n.parse().with_context(|| format!("agent: -http-max-body-bytes {n:?} is not a byte count"))?;
    }
    if let Some(d) = parsed.value("data-dir") {
        config.data_dir = Some(PathBuf::from(d));
    }
    if let Some(b) = parsed.value("bind") {
        config.bind_addr = b.to_owned();
    }
    for (flag, field) in [("node", &mut config.name), ("dc", &mut config.datacenter), ("region", &mut config.region)] {
        if let Some(v) = parsed.value(flag) {
            *field = v.to_owned();
        }
    }
    if parsed.flag("server") && config.server.is_none() {
        config.server = AgentConfig::dev().server;
    }
    if parsed.flag("client") && config.client.is_none() {
        config.client = AgentConfig::dev().client;
    }
    if let Some(client) = config.client.as_mut() {
        if let Some(s) = parsed.value("servers") {
            client.servers = s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        }
        if let Some(c) = parsed.value("node-class") {
            client.node_class = c.to_owned();
        }
        if let Some(p) = parsed.value("node-pool") {
            client.node_pool = p.to_owned();
        }
    }
    config.check()?;
    Ok(config)
}

#[cfg(madsim)]
pub async fn run(_config: AgentConfig) -> anyhow::Result<()> {
    bail!("agent: the agent does not run inside the simulator (stead-sim drives stead-server directly)")
}

#[cfg(not(madsim))]
pub async fn run(config: AgentConfig) -> anyhow::Result<()> {
    crate::run::run(config).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn agent_flags_parse_in_nomad_style() {
        let dev = parse(&args("-dev")).unwrap();
        assert!(dev.dev && dev.server.is_some() && dev.client.is_some() && dev.data_dir.is_none());
        assert_eq!((dev.bind_addr.as_str(), dev.http_port, dev.rpc_port), ("127.0.0.1", 4646, 4647));
        assert_eq!(parse(&args("-dev -data-dir /tmp/x")).unwrap().data_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(parse(&args("--dev --data-dir=/d")).unwrap().data_dir, Some(PathBuf::from("/d")));
        let o = parse(&args("-dev -bind 0.0.0.0 -http-port 0 -rpc-port 0")).unwrap();
        assert_eq!((o.bind_addr.as_str(), o.http_port, o.rpc_port), ("0.0.0.0", 0, 0));
        let client = parse(&args("-client -data-dir /d -servers 10.0.0.1:4647,10.0.0.2:4647 -node n1")).unwrap();
        assert!(client.server.is_none());
        assert_eq!(client.client.unwrap().servers.len(), 2);
        assert_eq!(client.name, "n1");
        assert!(parse(&args("-dev -http-port 70000")).unwrap_err().to_string().contains("-http-port"));
        assert!(parse(&args("-dev -bogus")).unwrap_err().to_string().contains("unknown flag"));
        assert!(parse(&args("-data-dir")).unwrap_err().to_string().contains("needs a value"));
        assert!(parse(&[]).is_err());
        assert!(parse(&args("-server")).unwrap_err().to_string().contains("data_dir"), "a server needs a data dir");
    }
}
