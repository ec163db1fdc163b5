//! `stead agent -dev` as a user runs it: the real binary on a loopback port, a job
//! registered and read back over HTTP, Ctrl-C (SIGINT) stopping it cleanly, and a durable
//! data directory keeping the job across a restart.
#![cfg(not(madsim))]

mod common;

use common::{Agent, job_json};

#[test]
fn a_dev_agent_serves_the_api_and_stops_cleanly_on_ctrl_c() {
    let agent = Agent::start(&[]);
    let (status, body) = agent.request("PUT", "/v1/jobs", &job_json("web"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"EvalID\""), "{body}");
    let (status, body) = agent.request("GET", "/v1/jobs", "");
    assert_eq!(status, 200);
    assert!(body.contains("\"ID\":\"web\""), "{body}");
    let (status, body) = agent.request("GET", "/v1/job/missing", "");
    assert_eq!((status, body.as_str()), (404, "job not found\n"));
    let (exit, rest) = agent.interrupt();
    assert!(exit.success(), "{exit}");
    assert!(rest.contains("stopping"), "{rest}");
}

#[test]
fn a_durable_dev_agent_keeps_its_jobs_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let agent = Agent::start(&["-data-dir", data]);
    assert_eq!(agent.request("PUT", "/v1/jobs", &job_json("kept")).0, 200);
    assert!(agent.interrupt().0.success());
    let agent = Agent::start(&["-data-dir", data]);
    let (status, body) = agent.request("GET", "/v1/job/kept", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"ID\":\"kept\""), "{body}");
    assert!(agent.interrupt().0.success());
}
