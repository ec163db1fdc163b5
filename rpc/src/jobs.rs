//! The typed `Jobs` API for programs: the operations behind Nomad's `/v1/job` endpoints,
//! the same `stead_server` calls the HTTP API makes.

use std::sync::Arc;

use stead_model::Job;
use stead_server::snapshot::ClusterCache;
use stead_server::{Env, Store, dry_run, jobs, reads};
use tonic::{Request, Response, Status};

use crate::pb::{self, jobs_server::Jobs};
use stead_server::acl::Capability;

use crate::{authorize, json, status};

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
    pub acl: stead_server::acl::Authorizer,
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

/// How long a watch waits for events before it looks again.
const EVENTS_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

type EventStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::EventBatch, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Jobs for JobsService {
    type WatchEventsStream = EventStream;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        authorize(&self.acl, &request, namespace(&request.get_ref().namespace), Capability::ReadJob)?;
        let r = request.into_inner();
        let filter = stead_server::events::Filter::parse(&r.topics, namespace(&r.namespace)).map_err(status)?;
        let store = self.store.clone();
        let batches = futures::stream::unfold(Some((store, filter, r.index)), |state| async move {
            let (store, filter, mut after) = state?;
            loop {
                match stead_server::events::next_batches(&store, after, &filter, EVENTS_WAIT).await {
                    Ok((batches, next)) if batches.is_empty() => after = next,
                    Ok((batches, next)) => {
                        let out: Vec<Result<pb::EventBatch, Status>> = batches
                            .iter()
                            .map(|b| {
                                Ok(pb::EventBatch {
                                    index: b.index,
                                    event_json: b.events.iter().map(json::encode).collect(),
                                })
                            })
                            .collect();
                        return Some((futures::stream::iter(out), Some((store, filter, next))));
                    }
                    // The stream ends with the error; the caller resumes from its last index.
                    Err(e) => return Some((futures::stream::iter(vec![Err(status(e))]), None)),
                }
            }
        });
        Ok(Response::new(Box::pin(futures::StreamExt::flatten(batches))))
    }

    async fn register(
        &self,
        request: Request<pb::RegisterJobRequest>,
    ) -> Result<Response<pb::RegisterJobResponse>, Status> {
        authorize(&self.acl, &request, "default", Capability::SubmitJob)?;
        let r = request.into_inner();
        let job = job_of(&r.job_json)?;
        let enforce = r.enforce_index.then_some(r.job_modify_index);
        let done = jobs::register(&self.store, &self.env, job, enforce).await.map_err(status)?;
        Ok(Response::new(registered(done)))
    }

    async fn plan(&self, request: Request<pb::PlanJobRequest>) -> Result<Response<pb::PlanJobResponse>, Status> {
        authorize(&self.acl, &request, "default", Capability::SubmitJob)?;
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
        authorize(&self.acl, &request, namespace(&request.get_ref().namespace), Capability::ReadJob)?;
        let r = request.into_inner();
        let read = reads::job(&self.store, namespace(&r.namespace), &r.job_id).await.map_err(status)?;
        Ok(Response::new(pb::JobResponse { job_json: json::encode(&read.value), index: read.index }))
    }

    async fn list(&self, request: Request<pb::ListJobsRequest>) -> Result<Response<pb::ListJobsResponse>, Status> {
        authorize(&self.acl, &request, namespace(&request.get_ref().namespace), Capability::ListJobs)?;
        let r = request.into_inner();
        let read = reads::list_jobs(&self.store, namespace(&r.namespace), &r.prefix).await.map_err(status)?;
        Ok(Response::new(pb::ListJobsResponse {
            job_stub_json: read.value.iter().map(json::encode).collect(),
            index: read.index,
        }))
    }

    async fn stop(&self, request: Request<pb::StopJobRequest>) -> Result<Response<pb::EvalResponse>, Status> {
        authorize(&self.acl, &request, namespace(&request.get_ref().namespace), Capability::SubmitJob)?;
        let r = request.into_inner();
        let s =
            jobs::stop(&self.store, &self.env, namespace(&r.namespace), &r.job_id, r.purge).await.map_err(status)?;
        Ok(Response::new(pb::EvalResponse { eval_id: s.eval_id.to_string(), index: s.index }))
    }

    async fn versions(&self, request: Request<pb::JobRef>) -> Result<Response<pb::JobVersionsResponse>, Status> {
        authorize(&self.acl, &request, namespace(&request.get_ref().namespace), Capability::ReadJob)?;
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
        authorize(&self.acl, &request, namespace(&request.get_ref().namespace), Capability::SubmitJob)?;
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
