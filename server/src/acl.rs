//! The one authorization point: every API request (HTTP and gRPC) names the capability
//! it needs and brings its token (`X-Nomad-Token`, or `Authorization: Bearer`), and
//! [`Authorizer::decide`] answers. With ACLs off — Nomad's default, and the only mode
//! until ACL tokens and policies are enforced — every request is allowed, token or not.
//!
//! The mapping from requests to capabilities ([`capability_of`]) follows Nomad's ACL
//! capabilities, so that enforcing policies later changes only `decide`.

/// What a request needs, in Nomad's ACL words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Capability {
    /// `namespace: list-jobs`
    ListJobs,
    /// `namespace: read-job`
    ReadJob,
    /// `namespace: submit-job`
    SubmitJob,
    /// `namespace: parse-job`
    ParseJob,
    /// `namespace: dispatch-job`
    DispatchJob,
    /// `namespace: read-job-scaling`
    ReadJobScaling,
    /// `namespace: scale-job`
    ScaleJob,
    /// `namespace: alloc-lifecycle`
    AllocLifecycle,
    /// `namespace: read-logs`
    ReadLogs,
    /// `node: read`
    NodeRead,
    /// `node: write`
    NodeWrite,
    /// `agent: read`
    AgentRead,
    /// `operator: write` (forcing a garbage collection)
    OperatorWrite,
    /// Needs no capability (`status/leader`, `metrics`, as Nomad).
    None,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::ListJobs => "list-jobs",
            Capability::ReadJob => "read-job",
            Capability::SubmitJob => "submit-job",
            Capability::ParseJob => "parse-job",
            Capability::DispatchJob => "dispatch-job",
            Capability::ReadJobScaling => "read-job-scaling",
            Capability::ScaleJob => "scale-job",
            Capability::AllocLifecycle => "alloc-lifecycle",
            Capability::ReadLogs => "read-logs",
            Capability::NodeRead => "node:read",
            Capability::NodeWrite => "node:write",
            Capability::AgentRead => "agent:read",
            Capability::OperatorWrite => "operator:write",
            Capability::None => "none",
        }
    }
}

/// The capability an HTTP request needs: `method` (GET, PUT, POST, DELETE) and `path`
/// (`/v1/...`, without the query).
pub fn capability_of(method: &str, path: &str) -> Capability {
    let read = method == "GET";
    let rest = path.strip_prefix("/v1/").unwrap_or(path);
    let (head, tail) = rest.split_once('/').unwrap_or((rest, ""));
    match head {
        "jobs" if tail == "parse" => Capability::ParseJob,
        "jobs" if read => Capability::ListJobs,
        "jobs" => Capability::SubmitJob,
        "job" => {
            if tail.ends_with("/dispatch") {
                Capability::DispatchJob
            } else if tail.ends_with("/scale") {
                if read { Capability::ReadJobScaling } else { Capability::ScaleJob }
            } else if read {
                Capability::ReadJob
            } else {
                Capability::SubmitJob
            }
        }
        "allocations" | "allocation" | "evaluations" | "evaluation" | "deployments" | "deployment" => {
            if read {
                Capability::ReadJob
            } else if head == "allocation" {
                Capability::AllocLifecycle
            } else {
                Capability::SubmitJob
            }
        }
        "client" => Capability::ReadLogs,
        "event" => Capability::ReadJob,
        "nodes" | "node" if read => Capability::NodeRead,
        "nodes" | "node" => Capability::NodeWrite,
        "agent" => Capability::AgentRead,
        "system" => Capability::OperatorWrite,
        _ => Capability::None,
    }
}

/// A request to authorize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The secret ID the request brought, if any.
    pub token: Option<&'a str>,
    pub namespace: &'a str,
    pub capability: Capability,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Nomad answers 403 `Permission denied`; the reason is for the log.
    Deny(String),
}

/// How requests are authorized.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authorizer {
    /// ACLs enforced. Off, every request is allowed (Nomad's default).
    pub enabled: bool,
}

impl Authorizer {
    pub fn decide(&self, request: &Request<'_>) -> Decision {
        if !self.enabled || request.capability == Capability::None {
            return Decision::Allow;
        }
        // Tokens and policies are not stored yet, so no token can hold a capability:
        // enabling ACLs is refused by the agent's configuration until they are.
        Decision::Deny(format!(
            "capability {} needs an ACL token, and ACL tokens are not supported yet",
            request.capability.as_str()
        ))
    }
}

/// The token of an HTTP request's headers: `X-Nomad-Token`, else `Authorization: Bearer`.
pub fn token_of<'a>(x_nomad_token: Option<&'a str>, authorization: Option<&'a str>) -> Option<&'a str> {
    x_nomad_token
        .filter(|t| !t.is_empty())
        .or_else(|| authorization.and_then(|a| a.strip_prefix("Bearer ")).map(str::trim).filter(|t| !t.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_map_to_nomads_capabilities() {
        let cases = [
            ("GET", "/v1/jobs", Capability::ListJobs),
            ("PUT", "/v1/jobs", Capability::SubmitJob),
            ("POST", "/v1/jobs/parse", Capability::ParseJob),
            ("GET", "/v1/job/web", Capability::ReadJob),
            ("GET", "/v1/job/batch/dispatch-1-2/versions", Capability::ReadJob),
            ("DELETE", "/v1/job/web", Capability::SubmitJob),
            ("POST", "/v1/job/web/plan", Capability::SubmitJob),
            ("POST", "/v1/job/encode/dispatch", Capability::DispatchJob),
            ("GET", "/v1/job/web/scale", Capability::ReadJobScaling),
            ("POST", "/v1/job/web/scale", Capability::ScaleJob),
            ("GET", "/v1/allocation/a1", Capability::ReadJob),
            ("POST", "/v1/allocation/a1/stop", Capability::AllocLifecycle),
            ("GET", "/v1/client/fs/logs/a1", Capability::ReadLogs),
            ("GET", "/v1/event/stream", Capability::ReadJob),
            ("GET", "/v1/nodes", Capability::NodeRead),
            ("POST", "/v1/node/n1/drain", Capability::NodeWrite),
            ("GET", "/v1/agent/self", Capability::AgentRead),
            ("PUT", "/v1/system/gc", Capability::OperatorWrite),
            ("GET", "/v1/status/leader", Capability::None),
            ("GET", "/v1/metrics", Capability::None),
        ];
        for (method, path, want) in cases {
            assert_eq!(capability_of(method, path), want, "{method} {path}");
        }
    }

    #[test]
    fn with_acls_off_every_request_is_allowed_with_or_without_a_token() {
        let off = Authorizer::default();
        for token in [None, Some("anything")] {
            let r = Request { token, namespace: "default", capability: Capability::SubmitJob };
            assert_eq!(off.decide(&r), Decision::Allow);
        }
        let on = Authorizer { enabled: true };
        let r = Request { token: Some("t"), namespace: "default", capability: Capability::SubmitJob };
        assert!(matches!(on.decide(&r), Decision::Deny(_)));
        let open = Request { token: None, namespace: "default", capability: Capability::None };
        assert_eq!(on.decide(&open), Decision::Allow);
    }

    #[test]
    fn the_token_comes_from_x_nomad_token_then_a_bearer_authorization() {
        assert_eq!(token_of(Some("a"), Some("Bearer b")), Some("a"));
        assert_eq!(token_of(None, Some("Bearer b")), Some("b"));
        assert_eq!(token_of(Some(""), Some("Basic x")), None);
        assert_eq!(token_of(None, None), None);
    }
}
