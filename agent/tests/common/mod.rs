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
            .args(["agent", "-dev", "-http-port", "0"])
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
