//! The HTTP client of the server commands: which agent (`-address`, `STEAD_ADDR`,
//! `NOMAD_ADDR`, default `http://127.0.0.1:4646`), which token (`-token`, `STEAD_TOKEN`,
//! `NOMAD_TOKEN`, sent as `X-Nomad-Token`) and namespace (`-namespace`, `STEAD_NAMESPACE`,
//! `NOMAD_NAMESPACE`, default `default`); requests with query parameters, JSON answers
//! with their `X-Nomad-Index`, blocking queries, and errors that say what failed and where.
//!
//! Blocking (ureq, plain HTTP): the CLI does one thing at a time. HTTP error statuses are
//! answers, not transport errors: the server's plain-text body is the message.

use std::fmt;
use std::io::Read;
use std::time::Duration;

use serde_json::Value;

use super::flags::{Parsed, Spec};

pub const ADDRESS_DEFAULT: &str = "http://127.0.0.1:4646";
pub const NAMESPACE_DEFAULT: &str = "default";

/// The flags every server command takes.
pub const GLOBALS: Spec = Spec { bools: &[], values: &["address", "token", "namespace", "region"] };

/// The largest answer read whole; a bigger one is an error (a runaway server must not eat
/// the client's memory). Log streams are not read whole and have no such bound.
const RESPONSE_BYTES_MAX: u64 = 256 << 20;
/// Giving up on an agent that does not accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the commands talk to and as whom.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub address: String,
    pub token: Option<String>,
    pub namespace: String,
    pub region: Option<String>,
}

impl Settings {
    /// Flags first, then `STEAD_*`, then `NOMAD_*` environment variables (empty ones are
    /// unset), then the defaults.
    pub fn resolve(parsed: &Parsed, env: impl Fn(&str) -> Option<String>) -> Settings {
        let pick = |flag: &str, vars: [&str; 2]| {
            parsed.value(flag).map(str::to_owned).or_else(|| vars.iter().find_map(|v| env(v).filter(|s| !s.is_empty())))
        };
        let address = pick("address", ["STEAD_ADDR", "NOMAD_ADDR"]).unwrap_or_else(|| ADDRESS_DEFAULT.to_owned());
        Settings {
            address: normalize_address(&address),
            token: pick("token", ["STEAD_TOKEN", "NOMAD_TOKEN"]),
            namespace: pick("namespace", ["STEAD_NAMESPACE", "NOMAD_NAMESPACE"])
                .unwrap_or_else(|| NAMESPACE_DEFAULT.to_owned()),
            region: pick("region", ["STEAD_REGION", "NOMAD_REGION"]),
        }
    }
}

/// `127.0.0.1:4646` → `http://127.0.0.1:4646`; no trailing slash.
fn normalize_address(address: &str) -> String {
    let address = address.trim().trim_end_matches('/');
    if address.contains("://") { address.to_owned() } else { format!("http://{address}") }
}

/// What went wrong talking to the agent.
#[derive(Debug)]
pub enum ApiError {
    /// No answer: nothing listens there, the name does not resolve, the connection broke.
    Unreachable { method: &'static str, url: String, address: String, reason: String },
    /// The agent answered with an error status; `body` is its message.
    Status { code: u16, path: String, body: String },
    /// The agent answered 2xx with something that is not the JSON expected.
    Decode { url: String, reason: String },
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The server's message for an error status ("" otherwise).
    pub fn body(&self) -> &str {
        match self {
            ApiError::Status { body, .. } => body.trim(),
            _ => "",
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unreachable { method, url, address, reason } => write!(
                f,
                "{method} {url:?}: {reason} (is a stead agent running at {address}? Set -address or STEAD_ADDR to \
                 reach another)"
            ),
            ApiError::Status { code, path, body } => {
                let body = body.trim();
                write!(f, "Unexpected response code: {code} ({body})")?;
                if *code == 404 && body == "Invalid URL path" {
                    write!(f, ": this agent does not serve {path}; it may be older than this command")?;
                }
                Ok(())
            }
            ApiError::Decode { url, reason } => write!(f, "decoding the answer of {url}: {reason}"),
        }
    }
}

impl std::error::Error for ApiError {}

/// A JSON answer and its `X-Nomad-Index` (0 when absent).
#[derive(Debug)]
pub struct Answer {
    pub value: Value,
    pub index: u64,
}

pub struct Client {
    pub settings: Settings,
    agent: ureq::Agent,
}

/// Parses a command's flags (its own `spec` and the global ones) and the client they name.
pub fn parse_command(command: &str, spec: &Spec, rest: &[String]) -> anyhow::Result<(Parsed, Client)> {
    let parsed = crate::cli::flags::parse_with(command, &[spec, &GLOBALS], rest)?;
    let client = Client::from_flags(&parsed);
    Ok((parsed, client))
}

impl Client {
    pub fn new(settings: Settings) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .max_redirects(0)
            .user_agent("stead-cli")
            .build()
            .new_agent();
        Client { settings, agent }
    }

    /// From the global flags of a parsed command line and the environment.
    pub fn from_flags(parsed: &Parsed) -> Client {
        Client::new(Settings::resolve(parsed, |name| std::env::var(name).ok()))
    }

    pub fn namespace(&self) -> &str {
        &self.settings.namespace
    }

    /// The same agent and token, another namespace (a job file's own).
    pub fn with_namespace(&self, namespace: &str) -> Client {
        Client {
            settings: Settings { namespace: namespace.to_owned(), ..self.settings.clone() },
            agent: self.agent.clone(),
        }
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> String {
        let mut url = format!("{}{path}", self.settings.address);
        let mut pairs: Vec<(&str, &str)> = vec![("namespace", &self.settings.namespace)];
        if let Some(region) = &self.settings.region {
            pairs.push(("region", region));
        }
        pairs.extend(query.iter().map(|(k, v)| (*k, v.as_str())));
        for (i, (k, v)) in pairs.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode(k));
            url.push('=');
            url.push_str(&encode(v));
        }
        url
    }

    fn send(
        &self,
        method: &'static str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<(http_response::Parts, String), ApiError> {
        let url = self.url(path, query);
        let unreachable = |e: ureq::Error| ApiError::Unreachable {
            method,
            url: url.clone(),
            address: self.settings.address.clone(),
            reason: reason(&e),
        };
        let token = self.settings.token.as_deref();
        let result = match (method, body) {
            ("GET", _) => with_token(self.agent.get(&url), token).call(),
            ("DELETE", _) => with_token(self.agent.delete(&url), token).call(),
            (_, body) => {
                let bytes = body.map(|b| serde_json::to_vec(b).unwrap_or_default()).unwrap_or_default();
                let request = if method == "PUT" { self.agent.put(&url) } else { self.agent.post(&url) };
                with_token(request, token).content_type("application/json").send(&bytes[..])
            }
        };
        let mut response = result.map_err(&unreachable)?;
        let mut parts = http_response::Parts::of(&response);
        parts.body = response.body_mut().with_config().limit(RESPONSE_BYTES_MAX).read_to_vec().map_err(&unreachable)?;
        if !(200..300).contains(&parts.status) {
            return Err(ApiError::Status {
                code: parts.status,
                path: path.to_owned(),
                body: String::from_utf8_lossy(&parts.body).into_owned(),
            });
        }
        Ok((parts, url))
    }

    fn json(
        &self,
        method: &'static str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Answer, ApiError> {
        let (parts, url) = self.send(method, path, query, body)?;
        let value = if parts.body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&parts.body).map_err(|e| ApiError::Decode { url, reason: e.to_string() })?
        };
        Ok(Answer { value, index: parts.index })
    }

    pub fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Answer, ApiError> {
        self.json("GET", path, query, None)
    }

    /// A blocking query: answers when what `path` reads changed after `index`, or after
    /// about `wait` (the server adds up to wait/16). `index` 0 answers at once.
    pub fn get_blocking(
        &self,
        path: &str,
        query: &[(&str, String)],
        index: u64,
        wait: Duration,
    ) -> Result<Answer, ApiError> {
        let mut query = query.to_vec();
        if index > 0 {
            query.push(("index", index.to_string()));
            query.push(("wait", format!("{}ms", wait.as_millis())));
        }
        self.get(path, &query)
    }

    pub fn post(&self, path: &str, query: &[(&str, String)], body: &Value) -> Result<Answer, ApiError> {
        self.json("POST", path, query, Some(body))
    }

    pub fn delete(&self, path: &str, query: &[(&str, String)]) -> Result<Answer, ApiError> {
        self.json("DELETE", path, query, None)
    }

    /// A GET whose answer is read as it arrives (`alloc logs -f`); error statuses are read
    /// whole and returned as [`ApiError::Status`].
    pub fn stream(&self, path: &str, query: &[(&str, String)]) -> Result<Box<dyn Read + Send>, ApiError> {
        let url = self.url(path, query);
        let response = with_token(self.agent.get(&url), self.settings.token.as_deref()).call().map_err(|e| {
            ApiError::Unreachable {
                method: "GET",
                url: url.clone(),
                address: self.settings.address.clone(),
                reason: reason(&e),
            }
        })?;
        let status = response.status().as_u16();
        let mut reader = response.into_body().into_reader();
        if !(200..300).contains(&status) {
            let mut body = Vec::new();
            let _ = reader.by_ref().take(RESPONSE_BYTES_MAX).read_to_end(&mut body);
            return Err(ApiError::Status {
                code: status,
                path: path.to_owned(),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        Ok(Box::new(reader))
    }
}

fn with_token<B>(request: ureq::RequestBuilder<B>, token: Option<&str>) -> ureq::RequestBuilder<B> {
    match token {
        Some(t) => request.header("X-Nomad-Token", t),
        None => request,
    }
}

/// The part of a ureq error a user needs: `connection refused`, not a debug dump.
fn reason(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            std::io::ErrorKind::TimedOut => "timed out".to_owned(),
            _ => io.to_string(),
        },
        other => other.to_string(),
    }
}

/// What the client keeps of a response before its body is read.
mod http_response {
    pub struct Parts {
        pub status: u16,
        pub index: u64,
        pub body: Vec<u8>,
    }

    impl Parts {
        pub fn of(response: &ureq::http::Response<ureq::Body>) -> Parts {
            let index = response
                .headers()
                .get("X-Nomad-Index")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            Parts { status: response.status().as_u16(), index, body: Vec::new() }
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters: a query value, or an
/// ID as one path segment (a job ID's `/` becomes `%2F`).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags;

    fn settings(args: &[&str], env: &[(&str, &str)]) -> Settings {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let parsed = flags::parse_with("t", &[&GLOBALS], &args).unwrap();
        Settings::resolve(&parsed, |name| env.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn flags_beat_stead_variables_which_beat_nomad_variables_which_beat_defaults() {
        let s = settings(&[], &[]);
        assert_eq!((s.address.as_str(), s.token, s.namespace.as_str()), ("http://127.0.0.1:4646", None, "default"));
        let env = [("NOMAD_ADDR", "http://nomad:4646"), ("NOMAD_TOKEN", "n"), ("NOMAD_NAMESPACE", "nn")];
        let s = settings(&[], &env);
        assert_eq!(
            (s.address.as_str(), s.token.as_deref(), s.namespace.as_str()),
            ("http://nomad:4646", Some("n"), "nn")
        );
        let env = [
            ("NOMAD_ADDR", "http://nomad:4646"),
            ("STEAD_ADDR", "stead:1"),
            ("STEAD_TOKEN", "s"),
            ("NOMAD_TOKEN", "n"),
        ];
        let s = settings(&[], &env);
        assert_eq!((s.address.as_str(), s.token.as_deref()), ("http://stead:1", Some("s")));
        let s = settings(&["-address", "http://flag:2/", "-token", "f", "-namespace", "prod"], &env);
        assert_eq!(
            (s.address.as_str(), s.token.as_deref(), s.namespace.as_str()),
            ("http://flag:2", Some("f"), "prod")
        );
        let s = settings(&[], &[("STEAD_ADDR", ""), ("NOMAD_ADDR", "http://n:1")]);
        assert_eq!(s.address, "http://n:1", "an empty variable is unset");
    }

    #[test]
    fn urls_carry_the_namespace_and_encode_ids_and_values() {
        let client = Client::new(settings(&["-address", "http://h:1", "-namespace", "a b"], &[]));
        let path = format!("/v1/job/{}", encode("batch/dispatch-1"));
        assert_eq!(
            client.url(&path, &[("prefix", "x&y".to_owned())]),
            "http://h:1/v1/job/batch%2Fdispatch-1?namespace=a%20b&prefix=x%26y"
        );
    }

    #[test]
    fn error_statuses_read_as_nomads_and_an_unknown_path_says_the_agent_lacks_it() {
        let e = ApiError::Status { code: 404, path: "/v1/job/x".into(), body: "job not found\n".into() };
        assert_eq!(e.to_string(), "Unexpected response code: 404 (job not found)");
        let e = ApiError::Status { code: 404, path: "/v1/client/fs/logs/a".into(), body: "Invalid URL path\n".into() };
        assert!(
            e.to_string()
                .ends_with("this agent does not serve /v1/client/fs/logs/a; it may be older than this command")
        );
    }
}
