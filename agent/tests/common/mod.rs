//! A `stead agent -dev` process for end-to-end tests: started on a free loopback port,
//! spoken to over plain HTTP/1.1, stopped with Ctrl-C (SIGINT).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Agent {
    child: Child,
    pub addr: String,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Agent {
    pub fn start(extra: &[&str]) -> Agent {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stead"))
            .args(["agent", "-dev", "-http-port", "0", "-rpc-port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the stead binary starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let addr = loop {
            line.clear();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "the agent exited before it listened");
            if let Some(addr) = line.trim().strip_prefix("HTTP API: http://") {
                break addr.to_owned();
            }
        };
        Agent { child, addr, stdout }
    }

    /// One HTTP/1.1 request; the status and the body.
    pub fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (status, body)
    }

    /// Ctrl-C; the exit status and the rest of stdout.
    pub fn interrupt(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        (self.child.wait().unwrap(), rest)
    }
}

pub fn job_json(id: &str) -> String {
    let hcl = format!(
        "job \"{id}\" {{\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"raw_exec\"\n      config {{\n        command = \"/bin/sleep\"\n        args = [\"60\"]\n      }}\n    }}\n  }}\n}}\n"
    );
    let json =
        stead_jobspec::parse_hcl(&hcl, "t.hcl", &stead_jobspec::VarInputs::new(), &stead_jobspec::OsEnv).unwrap();
    json.to_string()
}

/// What one run of the `stead` CLI did.
#[derive(Debug)]
pub struct CliRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `stead` CLI in `dir` with only the agent variables `env` set (every other
/// `STEAD_*`/`NOMAD_*` address, token, namespace and region variable removed), `stdin` as
/// its input.
pub fn stead_cli(args: &[&str], env: &[(&str, &str)], dir: &std::path::Path, stdin: Option<&str>) -> CliRun {
    const AGENT_VARS: [&str; 8] = [
        "STEAD_ADDR",
        "STEAD_TOKEN",
        "STEAD_NAMESPACE",
        "STEAD_REGION",
        "NOMAD_ADDR",
        "NOMAD_TOKEN",
        "NOMAD_NAMESPACE",
        "NOMAD_REGION",
    ];
    let mut command = Command::new(env!("CARGO_BIN_EXE_stead"));
    command.args(args).current_dir(dir).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for var in AGENT_VARS {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let mut child = command.spawn().expect("the stead binary starts");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    CliRun {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Agent {
    /// The agent's address as the CLI takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs the `stead` CLI against this agent (through `STEAD_ADDR`).
    pub fn cli(&self, args: &[&str], dir: &std::path::Path, stdin: Option<&str>) -> CliRun {
        stead_cli(args, &[("STEAD_ADDR", &self.url())], dir, stdin)
    }

    /// A blocking GET (`?index=N&wait=5s` when `index` > 0): the status, the answer's
    /// `X-Nomad-Index` and the body.
    pub fn get_blocking(&self, path: &str, index: u64) -> (u16, u64, String) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let path = if index > 0 { format!("{path}{sep}index={index}&wait=5s") } else { path.to_owned() };
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.addr).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let index = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("x-nomad-index:").map(|v| v.trim().to_owned()))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        (status, index, body.to_owned())
    }

    /// Waits (with blocking queries, at most `changes_max` changes of what `path` reads)
    /// until the JSON at `path` satisfies `done`; returns it.
    pub fn wait_for(
        &self,
        path: &str,
        changes_max: usize,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut index = 0;
        for _ in 0..changes_max {
            let (status, next, body) = self.get_blocking(path, index);
            assert_eq!(status, 200, "{path}: {body}");
            let value: serde_json::Value = serde_json::from_str(&body).unwrap();
            if done(&value) {
                return value;
            }
            index = next;
        }
        panic!("{path} did not reach the awaited state after {changes_max} looks");
    }
}

/// An agent a test did not stop (it failed first, or never meant to) dies with the test.
impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
