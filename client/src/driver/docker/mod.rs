//! The `docker` driver: each attempt of a task is a container of `config.image`, through the
//! Docker Engine API (bollard).
//!
//! * [`config`]: the task `config` and the container create request it becomes (pure).
//! * `handle`: a started container: its waiter, signals, removal after the exit.
//! * [`logs`]: the container's output copied into the task's rotated log files, resumed
//!   without loss or repetition after a client restart.
//!
//! A start pulls the image if the daemon lacks it (or `force_pull`), removes a container
//! left with the attempt's name (`<task>-<alloc_id>`), then creates and starts one
//! labelled with the allocation and task. Before creating it, `start` writes the name to
//! the run dir, so [`Driver::recover`] can adopt the container after a crash that lost
//! the handle. The persisted handle names the container by ID; a re-attached handle
//! finds it running (a new waiter and log follower) or exited (its exit code).
//!
//! The driver's health is the daemon's answer to `GET /version`: asked once when the
//! driver is built (blocking the caller for at most [`PING_TIMEOUT`]) and again at each
//! [`Driver::probe`] (the client's driver fingerprint loop); [`Driver::fingerprint`]
//! reads the last answer.

pub mod config;
mod handle;
pub mod logs;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::ContainerStateStatusEnum;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use stead_model::DriverInfo;

use self::config::{DockerTaskConfig, LABEL_ALLOC_ID, LABEL_MANAGED, container_body, container_name, split_reference};
use self::handle::DockerHandle;
use super::{Driver, DriverError, ExitResult, FsIsolation, TaskHandle, TaskSpec};
use crate::config::DockerConfig;
use crate::logs::LogLimits;
use crate::state::{read_json, write_json};

/// How long a health check waits for the daemon.
pub const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// How long an image pull may take (Nomad's `image_pull_timeout` default).
const PULL_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// What a handle is re-attached from, and what `recover` finds in the run dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persisted {
    /// Empty in the run dir's copy, written before the container exists.
    pub container_id: String,
    pub container_name: String,
    pub alloc_id: String,
    pub task: String,
    pub run_dir: PathBuf,
    pub logs_dir: PathBuf,
    pub log_limits: LogLimits,
}

fn container_file(run_dir: &Path) -> PathBuf {
    run_dir.join("container.json")
}

/// The HTTP status of a daemon's error answer.
fn status_of(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// What the daemon says about a container.
enum ContainerState {
    Running,
    /// Not running (any more): how it ended.
    Stopped(ExitResult),
    Gone,
    /// The daemon did not answer.
    Unknown(String),
}

async fn container_state(docker: &Docker, id: &str) -> ContainerState {
    let inspect = match docker.inspect_container(id, None).await {
        Ok(i) => i,
        Err(e) if status_of(&e) == Some(404) => return ContainerState::Gone,
        Err(e) => return ContainerState::Unknown(e.to_string()),
    };
    let Some(state) = inspect.state else {
        return ContainerState::Unknown("no state in the inspect answer".to_owned());
    };
    match state.status {
        Some(
            ContainerStateStatusEnum::RUNNING
            | ContainerStateStatusEnum::PAUSED
            | ContainerStateStatusEnum::RESTARTING
            | ContainerStateStatusEnum::STOPPING,
        ) => ContainerState::Running,
        Some(ContainerStateStatusEnum::CREATED) => {
            ContainerState::Stopped(ExitResult::lost(format!("container {id} was created but never started")))
        }
        _ if state.running == Some(true) => ContainerState::Running,
        _ => {
            let mut exit = ExitResult::code(state.exit_code.and_then(|c| i32::try_from(c).ok()).unwrap_or(0));
            exit.oom_killed = state.oom_killed.unwrap_or(false);
            if let Some(err) = state.error.filter(|e| !e.is_empty()) {
                exit.err = Some(format!("container {id}: {err}"));
            }
            ContainerState::Stopped(exit)
        }
    }
}

/// The daemon's health as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Health {
    healthy: bool,
    description: String,
    version: Option<String>,
}

/// The daemon's client. bollard checks that a unix socket exists when it connects, so
/// connecting is tried again until it succeeds: a daemon started after the client is
/// picked up by the next health check or task start.
#[derive(Clone)]
struct Connection {
    endpoint: String,
    docker: Arc<Mutex<Option<Docker>>>,
}

impl Connection {
    fn new(endpoint: &str) -> Self {
        Self { endpoint: endpoint.to_owned(), docker: Arc::new(Mutex::new(None)) }
    }

    fn get(&self) -> Result<Docker, String> {
        let mut docker = self.docker.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = docker.as_ref() {
            return Ok(d.clone());
        }
        let d = Docker::connect_with_host(&self.endpoint).map_err(|e| e.to_string())?;
        *docker = Some(d.clone());
        Ok(d)
    }
}

async fn check_health(connection: &Connection) -> Health {
    let endpoint = &connection.endpoint;
    let unhealthy = |why: String| Health {
        healthy: false,
        description: format!("failed to connect to the Docker daemon at {endpoint}: {why}"),
        version: None,
    };
    let docker = match connection.get() {
        Ok(d) => d,
        Err(e) => return unhealthy(e),
    };
    match tokio::time::timeout(PING_TIMEOUT, docker.version()).await {
        Ok(Ok(v)) => Health { healthy: true, description: "Healthy".to_owned(), version: v.version },
        Ok(Err(e)) => unhealthy(e.to_string()),
        Err(_) => unhealthy(format!("no answer within {PING_TIMEOUT:?}")),
    }
}

/// One health check from synchronous code: on a thread of its own with a runtime of its
/// own, so it works whatever runtime (if any) the caller is on.
fn check_health_blocking(endpoint: &str) -> Health {
    let endpoint = endpoint.to_owned();
    let run = std::thread::Builder::new().name("docker-ping".to_owned()).spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
        match runtime {
            Ok(rt) => rt.block_on(check_health(&Connection::new(&endpoint))),
            Err(e) => Health {
                healthy: false,
                description: format!("cannot check the Docker daemon at {endpoint}: {e}"),
                version: None,
            },
        }
    });
    let failed = |why: &str| Health { healthy: false, description: why.to_owned(), version: None };
    match run {
        Ok(t) => t.join().unwrap_or_else(|_| failed("the Docker health check panicked")),
        Err(e) => failed(&format!("cannot start the Docker health check: {e}")),
    }
}

pub struct DockerDriver {
    settings: DockerConfig,
    connection: Connection,
    health: Arc<Mutex<Health>>,
    /// One core's MHz, for `cpu_hard_limit`'s CFS quota.
    cpu_mhz_per_core: u64,
}

impl DockerDriver {
    /// Connects to `settings.endpoint` and checks the daemon once (see the module docs).
    /// `cpu_total_compute` is the client's override of the node's MHz, if any.
    pub fn new(settings: DockerConfig, cpu_total_compute: Option<i64>) -> Self {
        let connection = Connection::new(&settings.endpoint);
        let health = Arc::new(Mutex::new(check_health_blocking(&settings.endpoint)));
        let facts = crate::fingerprint::gather_facts(&crate::fingerprint::RealHost, Path::new("/"));
        let cpu_mhz_per_core = match cpu_total_compute {
            Some(total) if total > 0 => (total as u64 / u64::from(facts.cpu_cores.max(1))).max(1),
            _ => facts.cpu_mhz.unwrap_or(crate::fingerprint::FALLBACK_CPU_MHZ),
        };
        Self { settings, connection, health, cpu_mhz_per_core }
    }

    fn client(&self) -> Result<Docker, DriverError> {
        self.connection.get().map_err(|e| DriverError::Start {
            message: format!("cannot reach the Docker daemon at {}: {e}", self.settings.endpoint),
            recoverable: true,
        })
    }

    async fn ensure_image(&self, docker: &Docker, cfg: &DockerTaskConfig) -> Result<(), DriverError> {
        if !cfg.force_pull {
            match docker.inspect_image(&cfg.image).await {
                Ok(_) => return Ok(()),
                Err(e) if status_of(&e) == Some(404) => {}
                // An odd reference may not even make a valid URL; the pull says what is wrong.
                Err(e) if status_of(&e).is_some() => {
                    tracing::debug!(image = %cfg.image, error = %e, "inspecting the image failed; pulling it")
                }
                Err(e) => {
                    return Err(DriverError::Start {
                        message: format!("cannot reach the Docker daemon at {}: {e}", self.settings.endpoint),
                        recoverable: true,
                    });
                }
            }
        }
        let (repo, tag) = split_reference(&cfg.image);
        let options = CreateImageOptionsBuilder::new().from_image(repo).tag(tag).build();
        let credentials = cfg.auth.as_ref().map(|a| a.credentials());
        let pull = async {
            let mut progress = docker.create_image(Some(options), None, credentials);
            while let Some(item) = progress.next().await {
                item?;
            }
            Ok::<(), BollardError>(())
        };
        let failed = |why: String, recoverable| DriverError::Start {
            message: format!("failed to pull image \"{}\": {why}", cfg.image),
            recoverable,
        };
        match tokio::time::timeout(PULL_TIMEOUT, pull).await {
            Ok(Ok(())) => Ok(()),
            // 400: the reference itself is wrong; pulling again cannot help.
            Ok(Err(e)) => {
                let recoverable = status_of(&e) != Some(400);
                Err(failed(e.to_string(), recoverable))
            }
            Err(_) => Err(failed(format!("no result within {PULL_TIMEOUT:?}"), true)),
        }
    }

    /// Removes the container called `name`, if there is one.
    async fn remove_named(docker: &Docker, name: &str) -> Result<(), DriverError> {
        let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        match docker.remove_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(DriverError::Start {
                message: format!("cannot remove the earlier container {name}: {e}"),
                recoverable: true,
            }),
        }
    }

    async fn start_container(&self, spec: TaskSpec) -> Result<Box<dyn TaskHandle>, DriverError> {
        let cfg = DockerTaskConfig::parse(&spec.config)?;
        let body = container_body(&spec, &cfg, &self.settings, self.cpu_mhz_per_core)?;
        let docker = &self.client()?;
        self.ensure_image(docker, &cfg).await?;

        let name = container_name(&spec.task, spec.alloc_id.as_str());
        let mut persisted = Persisted {
            container_id: String::new(),
            container_name: name.clone(),
            alloc_id: spec.alloc_id.to_string(),
            task: spec.task.clone(),
            run_dir: spec.run_dir.clone(),
            logs_dir: spec.logs_dir.clone(),
            log_limits: spec.log_limits,
        };
        let io_err = |what: &str, e: &dyn std::fmt::Display| DriverError::Start {
            message: format!("{what} in {}: {e}", spec.run_dir.display()),
            recoverable: true,
        };
        // A fresh run dir: an earlier try's log position is not this container's.
        let _ = std::fs::remove_dir_all(&spec.run_dir);
        std::fs::create_dir_all(&spec.run_dir).map_err(|e| io_err("cannot create the run dir", &e))?;
        write_json(&container_file(&spec.run_dir), &persisted)
            .map_err(|e| io_err("cannot record the container's name", &e))?;

        // An earlier attempt (or a crash mid-start) may have left one of this name.
        Self::remove_named(docker, &name).await?;
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = docker.create_container(Some(options), body).await.map_err(|e| DriverError::Start {
            message: format!("failed to create container {name} from image \"{}\": {e}", cfg.image),
            recoverable: status_of(&e) != Some(400),
        })?;
        persisted.container_id = created.id.clone();
        if let Err(e) = docker.start_container(&created.id, None).await {
            let _ = Self::remove_named(docker, &created.id).await;
            return Err(DriverError::Start {
                message: format!("failed to start container {name}: {e}"),
                recoverable: status_of(&e) != Some(400),
            });
        }
        tracing::info!(container = %name, id = %created.id, image = %cfg.image, "container started");
        Ok(Box::new(DockerHandle::spawn(docker.clone(), persisted)))
    }
}

impl Driver for DockerDriver {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn fingerprint(&self, now_ns: i64) -> DriverInfo {
        let health = self.health.lock().map(|h| h.clone()).unwrap_or_else(|e| e.into_inner().clone());
        let mut info = DriverInfo {
            // As Nomad: a daemon that does not answer is not detected at all.
            detected: health.healthy,
            healthy: health.healthy,
            health_description: health.description,
            update_time: stead_model::time::format_rfc3339_nanos(now_ns),
            ..Default::default()
        };
        if let Some(v) = health.version {
            info.attributes.insert("driver.docker.version".to_owned(), v);
        }
        if health.healthy && self.settings.volumes_enabled {
            info.attributes.insert("driver.docker.volumes.enabled".to_owned(), "true".to_owned());
        }
        if health.healthy && self.settings.allow_privileged {
            info.attributes.insert("driver.docker.privileged.enabled".to_owned(), "true".to_owned());
        }
        info
    }

    fn fs_isolation(&self) -> FsIsolation {
        FsIsolation::Image
    }

    fn default_kill_signal(&self) -> i32 {
        libc::SIGTERM
    }

    fn probe(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let now = check_health(&self.connection).await;
            let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
            if health.healthy != now.healthy {
                tracing::info!(healthy = now.healthy, description = %now.description, "docker driver health changed");
            }
            *health = now;
        })
    }

    fn start(&self, spec: TaskSpec) -> BoxFuture<'_, Result<Box<dyn TaskHandle>, DriverError>> {
        Box::pin(self.start_container(spec))
    }

    fn reattach(&self, persisted: serde_json::Value) -> BoxFuture<'_, Result<Box<dyn TaskHandle>, DriverError>> {
        Box::pin(async move {
            let p: Persisted = serde_json::from_value(persisted)
                .map_err(|e| DriverError::Reattach(format!("not a docker handle: {e}")))?;
            let docker = &self.connection.get().map_err(DriverError::Reattach)?;
            match container_state(docker, &p.container_id).await {
                ContainerState::Gone => Err(DriverError::Reattach(format!(
                    "container {} ({}) no longer exists",
                    p.container_name, p.container_id
                ))),
                // The daemon is away (restarting with the client, say): the container may
                // well run. The handle's waiter keeps asking until the daemon answers;
                // calling the task lost would start a second container beside it.
                ContainerState::Unknown(e) => {
                    tracing::warn!(container = %p.container_name, error = %e, "cannot inspect the container; re-attaching anyway");
                    Ok(Box::new(DockerHandle::spawn(docker.clone(), p)) as Box<dyn TaskHandle>)
                }
                ContainerState::Running | ContainerState::Stopped(_) => {
                    Ok(Box::new(DockerHandle::spawn(docker.clone(), p)) as Box<dyn TaskHandle>)
                }
            }
        })
    }

    fn forget_alloc(&self, alloc: &stead_model::AllocId) -> BoxFuture<'_, ()> {
        let alloc = alloc.to_string();
        Box::pin(async move {
            let Ok(docker) = self.connection.get() else { return };
            let filters = std::collections::HashMap::from([(
                "label".to_owned(),
                vec![format!("{LABEL_ALLOC_ID}={alloc}"), format!("{LABEL_MANAGED}=true")],
            )]);
            let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
            let containers = match docker.list_containers(Some(options)).await {
                Ok(list) => list,
                Err(e) => {
                    tracing::warn!(alloc = %alloc, error = %e, "cannot list the allocation's containers to remove them");
                    return;
                }
            };
            for id in containers.into_iter().filter_map(|c| c.id) {
                let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
                match docker.remove_container(&id, Some(options)).await {
                    Ok(()) => tracing::info!(alloc = %alloc, container = %id, "removed a container left behind"),
                    Err(e) if status_of(&e) == Some(404) => {}
                    Err(e) => tracing::warn!(alloc = %alloc, container = %id, error = %e, "cannot remove a container"),
                }
            }
        })
    }

    fn recover(&self, run_dir: PathBuf) -> BoxFuture<'_, Option<Box<dyn TaskHandle>>> {
        Box::pin(async move {
            let mut p = read_json::<Persisted>(&container_file(&run_dir)).ok().flatten()?;
            let docker = &self.connection.get().ok()?;
            let inspect = docker.inspect_container(&p.container_name, None).await.ok()?;
            let labels = inspect.config.as_ref().and_then(|c| c.labels.as_ref());
            if labels.and_then(|l| l.get(LABEL_ALLOC_ID)) != Some(&p.alloc_id) {
                return None; // Another allocation's container of that name: not ours.
            }
            let id = inspect.id?;
            let started = inspect.state.and_then(|s| s.status).is_some_and(|s| s != ContainerStateStatusEnum::CREATED);
            if !started {
                // Created but never started: the next start replaces it.
                return None;
            }
            p.container_id = id;
            p.run_dir = run_dir;
            tracing::info!(container = %p.container_name, "adopted a container started before a crash");
            Some(Box::new(DockerHandle::spawn(docker.clone(), p)) as Box<dyn TaskHandle>)
        })
    }
}
