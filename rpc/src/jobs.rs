//! The typed `Jobs` API for programs: the operations behind Nomad's `/v1/job` endpoints,
//! the same `stead_server` calls the HTTP API makes.

use std::sync::Arc;

use stead_model::Job;
use stead_server::snapshot::ClusterCache;
use stead_server::{Env, Store, dry_run, jobs, reads};
use tonic::{Request, Response, Status};

use crate::pb::{self, jobs_server::Jobs};
use crate::{json, status};

/// The tonic service of [`JobsService`] (the simulator's generated servers carry an
/// interceptor type that tonic's do not).
#[cfg(not(madsim))]
pub type JobsServer = pb::jobs_server::JobsServer<JobsService>;
#[cfg(madsim)]
pub type JobsServer = pb::jobs_server::JobsServer<JobsService, tonic::codegen::IdentityInterceptor>;

/// What the service needs: the store, the clock, and the scheduler's configuration and
/// cluster view for plans (shared with the HTTP API's).
pub struct JobsService {
    pub store: Store,
    pub env: Env,
    pub sched: stead_sched::SchedConfig,
    pub cluster_seed: u64,
    pub plan_cache: Arc<tokio::sync::Mutex<ClusterCache>>,
}

impl JobsService {
    pub fn into_server(self) -> JobsServer {
        pb::jobs_server::JobsServer::new(self)
    }
}

fn namespace(ns: &str) -> &str {
    if ns.is_empty() { "default" } else { ns }
}

fn job_of(bytes: &[u8]) -> Result<Job, Status> {
    let job: Job = json::decode("job_json", bytes)?;
    let ns = job.namespace.clone();
    jobs::prepare(job, namespace(&ns)).map_err(status)
}

fn registered(r: jobs::Registered) -> pb::RegisterJobResponse {
    pb::RegisterJobResponse {
        eval_id: r.eval_id.map(|e| e.to_string()).unwrap_or_default(),
        job_modify_index: r.job_modify_index,
        version: r.version,
        index: r.index,
    }
}

#[tonic::async_trait]
impl Jobs for JobsService {
    async fn register(
        &self,
        request: Request<pb::RegisterJobRequest>,
    ) -> Result<Response<pb::RegisterJobResponse>, Status> {
        let r = request.into_inner();
        let job = job_of(&r.job_json)?;
        let enforce = r.enforce_index.then_some(r.job_modify_index);
        let done = jobs::register(&self.store, &self.env, job, enforce).await.map_err(status)?;
        Ok(Response::new(registered(done)))
    }

    async fn plan(&self, request: Request<pb::PlanJobRequest>) -> Result<Response<pb::PlanJobResponse>, Status> {
        let r = request.into_inner();
        let job = job_of(&r.job_json)?;
        let mut cache = self.plan_cache.lock().await;
        let d = dry_run::dry_run(&self.store, &mut cache, &self.env, &self.sched, self.cluster_seed, &job)
            .await
            .map_err(status)?;
        drop(cache);
        let answer = dry_run::plan_response(&d, &job, r.diff);
        Ok(Response::new(pb::PlanJobResponse {
            plan_json: json::encode(&answer),
            job_modify_index: d.job_modify_index,
            index: u64::try_from(d.snapshot_version).unwrap_or(0),
        }))
    }

    async fn get(&self, request: Request<pb::JobRef>) -> Result<Response<pb::JobResponse>, Status> {
        let r = request.into_inner();
        let read = reads::job(&self.store, namespace(&r.namespace), &r.job_id).await.map_err(status)?;
        Ok(Response::new(pb::JobResponse { job_json: json::encode(&read.value), index: read.index }))
    }

    async fn list(&self, request: Request<pb::ListJobsRequest>) -> Result<Response<pb::ListJobsResponse>, Status> {
        let r = request.into_inner();
        let read = reads::list_jobs(&self.store, namespace(&r.namespace), &r.prefix).await.map_err(status)?;
        Ok(Response::new(pb::ListJobsResponse {
            job_stub_json: read.value.iter().map(json::encode).collect(),
            index: read.index,
        }))
    }

    async fn stop(&self, request: Request<pb::StopJobRequest>) -> Result<Response<pb::EvalResponse>, Status> {
        let r = request.into_inner();
        let s =
            jobs::stop(&self.store, &self.env, namespace(&r.namespace), &r.job_id, r.purge).await.map_err(status)?;
        Ok(Response::new(pb::EvalResponse { eval_id: s.eval_id.to_string(), index: s.index }))
    }

    async fn versions(&self, request: Request<pb::JobRef>) -> Result<Response<pb::JobVersionsResponse>, Status> {
        let r = request.into_inner();
        let read = reads::job_versions(&self.store, namespace(&r.namespace), &r.job_id, true).await.map_err(status)?;
        let (versions, diffs) = read.value;
        Ok(Response::new(pb::JobVersionsResponse {
            job_json: versions.iter().map(json::encode).collect(),
            diff_json: diffs.iter().map(json::encode).collect(),
            index: read.index,
        }))
    }

    async fn revert(
        &self,
        request: Request<pb::RevertJobRequest>,
    ) -> Result<Response<pb::RegisterJobResponse>, Status> {
        let r = request.into_inner();
        let done = jobs::revert(
            &self.store,
            &self.env,
            namespace(&r.namespace),
            &r.job_id,
            r.version,
            r.enforce_prior_version,
        )
        .await
        .map_err(status)?;
        Ok(Response::new(registered(done)))
    }
}
