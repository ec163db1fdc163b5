//! A docker job end to end against a real `stead agent -dev` and a real Docker daemon, as
//! a Nomad user writes it: a prestart task fills the shared `/alloc` directory, the main
//! task serves it with busybox httpd on the port the group's network maps (`to = 8080`
//! inside, a dynamic port on the host), the page answers from the host, and stopping the
//! job removes every container it had. The image is imported locally, never pulled;
//! without a daemon the test skips, under CI (`CI=true`) it fails.
#![cfg(not(madsim))]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bollard::query_parameters::ListContainersOptionsBuilder;
use common::{Agent, http_get, poll_until};
use stead_testkit::docker::{TEST_IMAGE, docker_or_skip};

const DEADLINE: Duration = Duration::from_secs(30);

fn job_hcl(id: &str) -> String {
    format!(
        r#"job "{id}" {{
  group "g" {{
    network {{
      port "http" {{
        to = 8080
      }}
    }}
    task "init" {{
      driver = "docker"
      lifecycle {{
        hook = "prestart"
      }}
      config {{
        image   = "{TEST_IMAGE}"
        command = "/bin/sh"
        args    = ["-c", "echo hello from ${{NOMAD_TASK_NAME}} > /alloc/index.html"]
      }}
    }}
    task "web" {{
      driver = "docker"
      config {{
        image   = "{TEST_IMAGE}"
        command = "/bin/httpd"
        args    = ["-f", "-p", "${{NOMAD_PORT_http}}", "-h", "/alloc"]
        ports   = ["http"]
      }}
      resources {{
        cpu    = 100
        memory = 32
      }}
    }}
  }}
}}
"#
    )
}

/// Removes every container of job `job` when dropped: a failing test kills its agent,
/// and nothing else would remove them.
struct JobContainers(&'static str);

impl Drop for JobContainers {
    fn drop(&mut self) {
        let job = self.0;
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                let Ok(docker) = bollard::Docker::connect_with_host(stead_testkit::docker::ENDPOINT) else { return };
                let filters = HashMap::from([("label", vec![format!("com.hashicorp.nomad.job_id={job}")])]);
                let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
                for id in
                    docker.list_containers(Some(options)).await.unwrap_or_default().into_iter().filter_map(|c| c.id)
                {
                    let options = bollard::query_parameters::RemoveContainerOptionsBuilder::new().force(true).build();
                    let _ = docker.remove_container(&id, Some(options)).await;
                }
            });
        })
        .join();
    }
}

async fn containers_of(docker: &bollard::Docker, alloc: &str) -> Vec<String> {
    let filters = HashMap::from([("label", vec![format!("com.hashicorp.nomad.alloc_id={alloc}")])]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let list = docker.list_containers(Some(options)).await.expect("listing containers");
    list.into_iter().filter_map(|c| c.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_job_with_a_prestart_task_serves_on_its_mapped_port_and_stop_removes_its_containers() {
    let Some(docker) = docker_or_skip().await else { return };
    let _guard = JobContainers("docker-web");
    let agent = Agent::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("web.hcl"), job_hcl("docker-web")).unwrap();
    let run = tokio::task::block_in_place(|| agent.cli(&["job", "run", "-detach", "web.hcl"], dir.path(), None));
    assert_eq!(run.code, Some(0), "{run:?}");

    let allocs = tokio::task::block_in_place(|| {
        agent.await_json("/v1/job/docker-web/allocations", "the allocation placed", DEADLINE, |allocs| {
            allocs.as_array().unwrap().len() == 1
        })
    });
    let id = allocs[0]["ID"].as_str().unwrap().to_owned();
    // The allocation is running as soon as its init task is; the main task starts after.
    let alloc = tokio::task::block_in_place(|| {
        agent.await_json(&format!("/v1/allocation/{id}"), "the main task running", DEADLINE, |alloc| {
            alloc["TaskStates"]["web"]["State"] == "running"
        })
    });
    let init = &alloc["TaskStates"]["init"];
    assert_eq!((&init["State"], &init["Failed"]), (&"dead".into(), &false.into()), "{init:#}");
    let port = &alloc["AllocatedResources"]["Shared"]["Networks"][0]["DynamicPorts"][0];
    assert_eq!((&port["Label"], &port["To"]), (&"http".into(), &8080.into()), "{port:#}");
    let host_port = port["Value"].as_u64().unwrap();

    let answer = poll_until(&format!("httpd on 127.0.0.1:{host_port}"), DEADLINE, |seen| {
        let answer = http_get(&format!("127.0.0.1:{host_port}"), "/index.html");
        *seen = format!("{answer:?}");
        answer.filter(|a| a.contains("hello from init"))
    });
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert_eq!(containers_of(&docker, &id).await.len(), 1, "the finished init task's container is gone");

    let stop = tokio::task::block_in_place(|| agent.cli(&["job", "stop", "docker-web"], dir.path(), None));
    assert_eq!(stop.code, Some(0), "{stop:?}");
    tokio::task::block_in_place(|| {
        agent.await_json("/v1/job/docker-web/allocations", "the allocation complete", DEADLINE, |allocs| {
            allocs.as_array().unwrap().iter().all(|a| a["ClientStatus"] == "complete")
        })
    });
    let mut waited = Duration::ZERO;
    while !containers_of(&docker, &id).await.is_empty() {
        assert!(waited < DEADLINE, "the stopped job's containers are removed");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
}
