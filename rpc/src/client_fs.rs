//! `ClientFs`: the task logs a client serves to servers, which serve them on
//! `/v1/client/fs/logs/:alloc` (Nomad's servers forward the same request to the node).
//!
//! The client's side is [`ClientFsService`] over a [`LogSource`] (the agent adapts the
//! client's log reader to it); the servers' side is [`stream_logs`].

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use tonic::transport::Endpoint;
use tonic::{Request, Response, Status};

use crate::pb::{self, client_fs_server::ClientFs};

/// The node attribute where a client says where its `ClientFs` service listens
/// (`host:port`); `unique.` keeps it out of the node's computed class, as Nomad's unique
/// attributes.
pub const RPC_ADDR_ATTRIBUTE: &str = "unique.stead.rpc_addr";

/// Which log, from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsQuery {
    pub alloc_id: String,
    pub task: String,
    pub stderr: bool,
    /// Count `offset` back from the end instead of from the start.
    pub from_end: bool,
    pub offset: u64,
    pub follow: bool,
}

/// A piece of a log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFrame {
    pub file: String,
    pub offset: u64,
    pub data: Vec<u8>,
}

/// Why a log cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogError {
    /// No such allocation or task on this client, or its logging is disabled.
    NotFound(String),
    Invalid(String),
    Unavailable(String),
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogError::NotFound(m) | LogError::Invalid(m) | LogError::Unavailable(m) => f.write_str(m),
        }
    }
}

/// What a client reads its tasks' logs from.
pub trait LogSource: Send + Sync + 'static {
    /// The frames of one log; ends at the current end unless `follow`.
    fn logs(&self, query: LogsQuery) -> BoxStream<'static, Result<LogFrame, LogError>>;
}

/// The tonic service of [`ClientFsService`] (the simulator's generated servers carry an
/// interceptor type that tonic's do not).
#[cfg(not(madsim))]
pub type ClientFsServer = pb::client_fs_server::ClientFsServer<ClientFsService>;
#[cfg(madsim)]
pub type ClientFsServer = pb::client_fs_server::ClientFsServer<ClientFsService, tonic::codegen::IdentityInterceptor>;

pub struct ClientFsService {
    source: Arc<dyn LogSource>,
}

impl ClientFsService {
    pub fn new(source: Arc<dyn LogSource>) -> Self {
        Self { source }
    }

    pub fn into_server(self) -> ClientFsServer {
        pb::client_fs_server::ClientFsServer::new(self)
    }
}

fn log_status(e: LogError) -> Status {
    match e {
        LogError::NotFound(m) => Status::not_found(m),
        LogError::Invalid(m) => Status::invalid_argument(m),
        LogError::Unavailable(m) => Status::unavailable(m),
    }
}

type FrameStream = Pin<Box<dyn Stream<Item = Result<pb::LogFrame, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ClientFs for ClientFsService {
    type StreamLogsStream = FrameStream;

    async fn stream_logs(&self, request: Request<pb::LogsRequest>) -> Result<Response<Self::StreamLogsStream>, Status> {
        let r = request.into_inner();
        let query = LogsQuery {
            alloc_id: r.alloc_id,
            task: r.task,
            stderr: r.stream == pb::LogStream::Stderr as i32,
            from_end: r.origin == pb::LogOrigin::End as i32,
            offset: r.offset,
            follow: r.follow,
        };
        // Fused: a log with nothing in it ends at the first poll, and is not polled again.
        let mut frames = self.source.logs(query).fuse();
        // The first frame (or error) before answering, so that an unknown allocation or
        // task is the call's status, not a stream that fails later.
        let first = frames.next().await;
        let first = match first {
            Some(Err(e)) => return Err(log_status(e)),
            other => other,
        };
        let rest = futures::stream::iter(first)
            .chain(frames)
            .map(|f| f.map(|f| pb::LogFrame { file: f.file, offset: f.offset, data: f.data }).map_err(log_status));
        Ok(Response::new(Box::pin(rest)))
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The servers' side: the frames of a log from the client at `addr` (`host:port`).
pub async fn stream_logs(
    addr: &str,
    query: LogsQuery,
) -> Result<BoxStream<'static, Result<LogFrame, LogError>>, LogError> {
    let url = if addr.contains("://") { addr.to_owned() } else { format!("http://{addr}") };
    let endpoint =
        Endpoint::from_shared(url.clone()).map_err(|e| LogError::Invalid(format!("client address {url:?}: {e}")))?;
    let channel = endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await
        .map_err(|e| LogError::Unavailable(format!("connecting to the client at {url}: {e}")))?;
    let request = pb::LogsRequest {
        alloc_id: query.alloc_id,
        task: query.task,
        stream: if query.stderr { pb::LogStream::Stderr } else { pb::LogStream::Stdout } as i32,
        origin: if query.from_end { pb::LogOrigin::End } else { pb::LogOrigin::Start } as i32,
        offset: query.offset,
        follow: query.follow,
    };
    let response =
        pb::client_fs_client::ClientFsClient::new(channel).stream_logs(request).await.map_err(|s| match s.code() {
            tonic::Code::NotFound => LogError::NotFound(s.message().to_owned()),
            tonic::Code::InvalidArgument => LogError::Invalid(s.message().to_owned()),
            _ => LogError::Unavailable(format!("the client at {url}: {}", s.message())),
        })?;
    Ok(response
        .into_inner()
        .map(|f| {
            f.map(|f| LogFrame { file: f.file, offset: f.offset, data: f.data })
                .map_err(|s| LogError::Unavailable(s.message().to_owned()))
        })
        .boxed())
}
