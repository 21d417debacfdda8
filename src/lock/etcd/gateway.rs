//! A blocking client for etcd's HTTP/JSON gateway (the grpc-gateway every etcd v3
//! server serves on its client URLs): `/v3/lease/*`, `/v3/kv/*`, `/v3/watch`,
//! `/v3/auth/authenticate`. Keys and values travel base64-encoded, int64s as decimal
//! strings, and a field equal to its zero value is left out of answers.
//!
//! No async runtime, no protoc: one `ureq` agent (rustls when a URL says `etcds://`),
//! built only when a command names an etcd backend, so the local path pays nothing.
//!
//! Every call has a deadline. A member that does not answer in time, or refuses the
//! connection, is left for the next one in the list; a call gives up only when every
//! member failed or the deadline passed. Calls that change state are written so that
//! repeating them is harmless (create-if-absent of a key only this lease writes;
//! revoking a lease twice), because a member may have applied a request whose answer was
//! lost.

use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

/// Longest wait for one member's answer to a unary call: a member whose leader just died
/// can hold a request until its own request timeout (7 s), while another member answers
/// at once.
const ATTEMPT_LIMIT: Duration = Duration::from_millis(1500);
/// Pause before a new round over the members when all failed.
const ROUND_PAUSE: Duration = Duration::from_millis(100);

/// Where and how to reach etcd.
#[derive(Debug, Clone, Default)]
pub(crate) struct Endpoints {
    /// `host:port` of each member, tried in order.
    pub(crate) hosts: Vec<String>,
    /// TLS (`etcds://`): trust this CA (PEM) and present this client certificate.
    pub(crate) tls: Option<Tls>,
    /// User and password for etcd's auth (from the environment, never argv).
    pub(crate) user: Option<(String, String)>,
}

#[derive(Debug, Clone, Default)]
// Read only where TLS is built in (Linux).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) struct Tls {
    /// PEM bundle of the CAs to trust; `None`: the bundled web roots (webpki-roots).
    pub(crate) ca: Option<Vec<u8>>,
    /// PEM client certificate chain and its private key.
    pub(crate) client: Option<(Vec<u8>, Vec<u8>)>,
}

/// What went wrong talking to etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GwError {
    /// No member answered in time (or at all): the last failure, per member.
    Unreachable(String),
    /// etcd answered with an error: its gRPC code and message.
    Server { code: i64, message: String },
    /// The user or password was refused, or the user may not do this.
    Auth(String),
    /// A TLS file could not be used.
    Tls(String),
    /// An answer lockrun cannot read (not etcd? a proxy?).
    Protocol(String),
}

impl std::fmt::Display for GwError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GwError::Unreachable(why) => write!(f, "etcd is unreachable ({why})"),
            GwError::Server { code, message } => write!(f, "etcd refused: {message} (code {code})"),
            GwError::Auth(why) => write!(f, "etcd auth failed: {why}"),
            GwError::Tls(why) => write!(f, "{why}"),
            GwError::Protocol(why) => write!(f, "unexpected answer from etcd: {why}"),
        }
    }
}

impl std::error::Error for GwError {}

/// gRPC status codes etcd uses in its error answers.
const CODE_INVALID_ARGUMENT: i64 = 3;
const CODE_NOT_FOUND: i64 = 5;
const CODE_PERMISSION_DENIED: i64 = 7;
const CODE_UNAUTHENTICATED: i64 = 16;

/// One key-value pair as etcd returns it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Kv {
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
    pub(crate) create_revision: i64,
    pub(crate) mod_revision: i64,
    pub(crate) lease: i64,
}

/// The answer of a range: the pairs and the store revision it was read at.
#[derive(Debug, Clone, Default)]
pub(crate) struct Range {
    pub(crate) kvs: Vec<Kv>,
    pub(crate) revision: i64,
}

/// A client for one etcd cluster. Cheap to clone: clones share the connection pool, the
/// auth token and the member last found working.
#[derive(Debug, Clone)]
pub(crate) struct Gateway {
    agent: ureq::Agent,
    base_urls: Arc<Vec<String>>,
    /// The member that answered last: tried first.
    current: Arc<AtomicUsize>,
    user: Option<(String, String)>,
    token: Arc<Mutex<Option<String>>>,
}

impl Gateway {
    pub(crate) fn new(endpoints: &Endpoints) -> Result<Gateway, GwError> {
        let scheme = if endpoints.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // etcd is reached directly: an http_proxy from the environment must not
            // carry lock traffic elsewhere.
            .proxy(None)
            .max_redirects(0)
            .user_agent(format!("lockrun/{}", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = &endpoints.tls {
            config = with_tls(config, tls)?;
        }
        Ok(Gateway {
            agent: config.build().into(),
            base_urls: Arc::new(
                endpoints
                    .hosts
                    .iter()
                    .map(|h| format!("{scheme}://{h}"))
                    .collect(),
            ),
            current: Arc::new(AtomicUsize::new(0)),
            user: endpoints.user.clone(),
            token: Arc::new(Mutex::new(None)),
        })
    }

    /// POSTs `body` to `path` on the first member that answers before `deadline`,
    /// authenticating first (and once more when the token expired) if a user is set.
    fn call(&self, path: &str, body: &Value, deadline: Instant) -> Result<Value, GwError> {
        let mut reauthenticated = false;
        loop {
            let token = self.token_before(deadline)?;
            match self.post_any(path, body, token.as_deref(), deadline) {
                Err(GwError::Server { code, .. })
                    if code == CODE_UNAUTHENTICATED && self.user.is_some() && !reauthenticated =>
                {
                    // Simple tokens expire when unused for a while: get a new one, once.
                    reauthenticated = true;
                    self.forget_token();
                }
                other => return other,
            }
        }
    }

    fn forget_token(&self) {
        if let Ok(mut t) = self.token.lock() {
            *t = None;
        }
    }

    fn token_before(&self, deadline: Instant) -> Result<Option<String>, GwError> {
        let Some((name, password)) = &self.user else {
            return Ok(None);
        };
        if let Ok(t) = self.token.lock()
            && let Some(token) = t.as_ref()
        {
            return Ok(Some(token.clone()));
        }
        let answer = self
            .post_any(
                "/v3/auth/authenticate",
                &json!({ "name": name, "password": password }),
                None,
                deadline,
            )
            .map_err(|e| match e {
                GwError::Server { message, .. } => GwError::Auth(format!(
                    "user {name}: {}",
                    message.trim_start_matches("etcdserver: ")
                )),
                other => other,
            })?;
        let token = answer
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| GwError::Protocol("authenticate gave no token".into()))?
            .to_string();
        if let Ok(mut t) = self.token.lock() {
            *t = Some(token.clone());
        }
        Ok(Some(token))
    }

    /// One unary call, member after member, until one answers or `deadline` passes.
    fn post_any(
        &self,
        path: &str,
        body: &Value,
        token: Option<&str>,
        deadline: Instant,
    ) -> Result<Value, GwError> {
        let n = self.base_urls.len();
        let mut failures: Vec<String> = Vec::new();
        let first = self.current.load(Ordering::Relaxed);
        // Bounded: each attempt takes at least a connect, and a round ends with a pause.
        for _round in 0..1000 {
            for k in 0..n {
                let i = (first + k) % n;
                let now = Instant::now();
                if now >= deadline {
                    return Err(unreachable(failures));
                }
                let limit = (deadline - now).min(ATTEMPT_LIMIT);
                match self.post_one(&self.base_urls[i], path, body, token, limit) {
                    Ok(v) => {
                        self.current.store(i, Ordering::Relaxed);
                        return Ok(v);
                    }
                    Err(Attempt::Answer(e)) => {
                        self.current.store(i, Ordering::Relaxed);
                        return Err(e);
                    }
                    Err(Attempt::Failed(why)) => {
                        failures.retain(|f| !f.starts_with(&self.base_urls[i]));
                        failures.push(format!("{}: {why}", self.base_urls[i]));
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(ROUND_PAUSE));
        }
        Err(unreachable(failures))
    }

    fn post_one(
        &self,
        base: &str,
        path: &str,
        body: &Value,
        token: Option<&str>,
        limit: Duration,
    ) -> Result<Value, Attempt> {
        let mut request = self
            .agent
            .post(format!("{base}{path}"))
            .config()
            .timeout_global(Some(limit))
            .build()
            .header("Content-Type", "application/json");
        if let Some(t) = token {
            request = request.header("Authorization", t);
        }
        let mut response = request
            .send(body.to_string())
            .map_err(|e| Attempt::Failed(transport_error(&e)))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| Attempt::Failed(transport_error(&e)))?;
        let value: Value = serde_json::from_str(&text).map_err(|_| {
            Attempt::Answer(GwError::Protocol(format!(
                "HTTP {status} from {base}{path}: {}",
                snippet(&text)
            )))
        })?;
        if let Some(e) = server_error(&value) {
            // A member without a leader, or shutting down, answers "unavailable": ask
            // another one.
            return Err(match e {
                GwError::Server { code, message } if is_retryable(code, &message) => {
                    Attempt::Failed(message)
                }
                e => Attempt::Answer(e),
            });
        }
        if !(200..300).contains(&status) {
            return Err(Attempt::Answer(GwError::Protocol(format!(
                "HTTP {status} from {base}{path}: {}",
                snippet(&text)
            ))));
        }
        Ok(value)
    }

    /// Grants a lease of `ttl_secs`; returns its id and the TTL etcd gave (etcd raises
    /// TTLs below its minimum, 2 s with default settings).
    pub(crate) fn lease_grant(
        &self,
        ttl_secs: i64,
        deadline: Instant,
    ) -> Result<(i64, i64), GwError> {
        let v = self.call(
            "/v3/lease/grant",
            &json!({ "TTL": ttl_secs.to_string() }),
            deadline,
        )?;
        let id = int(&v, "ID");
        if id == 0 {
            return Err(GwError::Protocol(format!(
                "lease grant without an ID: {}",
                snippet(&v.to_string())
            )));
        }
        Ok((id, int(&v, "TTL")))
    }

    /// Refreshes a lease; `Some(ttl)` while it lives, `None` once it expired or was
    /// revoked.
    pub(crate) fn lease_keepalive(
        &self,
        id: i64,
        deadline: Instant,
    ) -> Result<Option<i64>, GwError> {
        let v = self.call(
            "/v3/lease/keepalive",
            &json!({ "ID": id.to_string() }),
            deadline,
        )?;
        // A stream of answers; one request gives one. A lease that is gone comes back
        // with no TTL (zero is left out).
        let result = v.get("result").unwrap_or(&v);
        let ttl = int(result, "TTL");
        Ok((ttl > 0).then_some(ttl))
    }

    /// The voting members of the cluster (learners left out), as the member asked
    /// knows them: the size of the cluster that a majority is counted against.
    pub(crate) fn voting_members(&self, deadline: Instant) -> Result<Vec<u64>, GwError> {
        let v = self.call("/v3/cluster/member/list", &json!({}), deadline)?;
        let members = v
            .get("members")
            .and_then(Value::as_array)
            .ok_or_else(|| GwError::Protocol("member list without members".into()))?;
        let ids: Vec<u64> = members
            .iter()
            .filter(|m| m.get("isLearner").and_then(Value::as_bool) != Some(true))
            .map(|m| uint(m, "ID"))
            .filter(|&id| id != 0)
            .collect();
        if ids.is_empty() {
            return Err(GwError::Protocol(
                "member list without a voting member".into(),
            ));
        }
        Ok(ids)
    }

    /// Asks every endpoint at once for `/v3/maintenance/status`, each answer due by
    /// `deadline`; returns the answers that came in time (none from a member that is
    /// down, stopped or slow). No retries: this is one round.
    pub(crate) fn status_round(&self, deadline: Instant) -> Vec<MemberStatus> {
        let token = self.token.lock().ok().and_then(|t| t.as_ref().cloned());
        std::thread::scope(|scope| {
            let asks: Vec<_> = self
                .base_urls
                .iter()
                .map(|base| {
                    let token = token.as_deref();
                    scope.spawn(move || {
                        let limit = deadline.saturating_duration_since(Instant::now());
                        if limit.is_zero() {
                            return None;
                        }
                        let v = self
                            .post_one(base, "/v3/maintenance/status", &json!({}), token, limit)
                            .ok()?;
                        // An answer that came after the deadline counts for nothing.
                        if Instant::now() >= deadline {
                            return None;
                        }
                        let member = v.get("header").map_or(0, |h| uint(h, "member_id"));
                        (member != 0).then(|| MemberStatus {
                            member,
                            leader: uint(&v, "leader"),
                            learner: v.get("isLearner").and_then(Value::as_bool) == Some(true),
                        })
                    })
                })
                .collect();
            asks.into_iter()
                .filter_map(|a| a.join().ok().flatten())
                .collect()
        })
    }

    /// Revokes a lease, deleting every key attached to it. A lease already gone is fine.
    pub(crate) fn lease_revoke(&self, id: i64, deadline: Instant) -> Result<(), GwError> {
        match self.call(
            "/v3/lease/revoke",
            &json!({ "ID": id.to_string() }),
            deadline,
        ) {
            Ok(_) => Ok(()),
            Err(GwError::Server { code, .. }) if code == CODE_NOT_FOUND => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Puts `key` = `value` attached to `lease` unless `key` exists; either way returns
    /// the pairs of `[range_start, range_end)` sorted by creation, and whether the put
    /// happened, in one transaction.
    pub(crate) fn create_and_range(
        &self,
        key: &[u8],
        value: &[u8],
        lease: i64,
        range_start: &[u8],
        range_end: &[u8],
        deadline: Instant,
    ) -> Result<(bool, Range), GwError> {
        let range = json!({ "request_range": {
            "key": B64.encode(range_start),
            "range_end": B64.encode(range_end),
            "sort_order": "ASCEND",
            "sort_target": "CREATE",
        }});
        let body = json!({
            "compare": [{
                "key": B64.encode(key),
                "target": "CREATE",
                "result": "EQUAL",
                "create_revision": "0",
            }],
            "success": [
                { "request_put": {
                    "key": B64.encode(key),
                    "value": B64.encode(value),
                    "lease": lease.to_string(),
                }},
                range,
            ],
            "failure": [range],
        });
        let v = self.call("/v3/kv/txn", &body, deadline)?;
        let created = v.get("succeeded").and_then(Value::as_bool).unwrap_or(false);
        let responses = v
            .get("responses")
            .and_then(Value::as_array)
            .ok_or_else(|| GwError::Protocol("txn answer without responses".into()))?;
        let range = responses
            .iter()
            .find_map(|r| r.get("response_range"))
            .ok_or_else(|| GwError::Protocol("txn answer without its range".into()))?;
        Ok((created, parse_range(range, header_revision(&v))?))
    }

    /// The pairs of `[start, end)` (`end` empty: the key `start` alone), sorted by
    /// creation.
    pub(crate) fn range(
        &self,
        start: &[u8],
        end: &[u8],
        deadline: Instant,
    ) -> Result<Range, GwError> {
        let mut body = json!({
            "key": B64.encode(start),
            "sort_order": "ASCEND",
            "sort_target": "CREATE",
        });
        if !end.is_empty() {
            body["range_end"] = Value::String(B64.encode(end));
        }
        let v = self.call("/v3/kv/range", &body, deadline)?;
        parse_range(&v, header_revision(&v))
    }

    /// Blocks until `key` is deleted at a revision after `after_revision`, etcd compacted
    /// the history asked for (look again), or `deadline` passes. Watches on one member; when its stream breaks, goes on
    /// with the next one from where it was.
    pub(crate) fn wait_deleted(
        &self,
        key: &[u8],
        after_revision: i64,
        deadline: Instant,
    ) -> Result<Wake, GwError> {
        let mut from = after_revision + 1;
        let mut failures = Vec::new();
        let n = self.base_urls.len();
        // Bounded: every round either ends the wait or makes a member fail; past the
        // deadline every attempt returns at once.
        for attempt in 0..10_000 {
            if Instant::now() >= deadline {
                return Ok(Wake::TimedOut);
            }
            let i = (self.current.load(Ordering::Relaxed) + attempt) % n;
            let token = self.token_before(deadline)?;
            match self.watch_one(
                &self.base_urls[i],
                key,
                &mut from,
                token.as_deref(),
                deadline,
            ) {
                Ok(WatchEnd::Deleted) => return Ok(Wake::Deleted),
                Ok(WatchEnd::TimedOut) => return Ok(Wake::TimedOut),
                // The history asked for is gone: the caller looks again.
                Ok(WatchEnd::Compacted) => return Ok(Wake::LookAgain),
                Err(Attempt::Answer(GwError::Server { code, .. }))
                    if code == CODE_UNAUTHENTICATED && self.user.is_some() =>
                {
                    self.forget_token();
                }
                Err(Attempt::Answer(e)) => return Err(e),
                Err(Attempt::Failed(why)) => {
                    failures.push(format!("{}: {why}", self.base_urls[i]));
                    if attempt % n == n - 1 {
                        std::thread::sleep(
                            deadline
                                .saturating_duration_since(Instant::now())
                                .min(ROUND_PAUSE),
                        );
                    }
                }
            }
        }
        Err(unreachable(failures))
    }

    fn watch_one(
        &self,
        base: &str,
        key: &[u8],
        from: &mut i64,
        token: Option<&str>,
        deadline: Instant,
    ) -> Result<WatchEnd, Attempt> {
        let limit = deadline.saturating_duration_since(Instant::now());
        let mut request = self
            .agent
            .post(format!("{base}/v3/watch"))
            .config()
            .timeout_global(Some(limit))
            .build()
            .header("Content-Type", "application/json");
        if let Some(t) = token {
            request = request.header("Authorization", t);
        }
        let body = json!({ "create_request": {
            "key": B64.encode(key),
            "start_revision": from.to_string(),
            "filters": ["NOPUT"],
        }});
        let response = match request.send(body.to_string()) {
            Ok(r) => r,
            Err(ureq::Error::Timeout(_)) if Instant::now() >= deadline => {
                return Ok(WatchEnd::TimedOut);
            }
            Err(e) => return Err(Attempt::Failed(transport_error(&e))),
        };
        let status = response.status().as_u16();
        let mut lines = BufReader::new(response.into_body().into_reader().take(64 << 20));
        let mut line = String::new();
        // Bounded by the stream: each line is one answer, and the read times out at the
        // deadline.
        loop {
            line.clear();
            match lines.read_line(&mut line) {
                Ok(0) => return Err(Attempt::Failed("watch stream closed".into())),
                Ok(_) => {}
                Err(_) if Instant::now() >= deadline => return Ok(WatchEnd::TimedOut),
                Err(e) => return Err(Attempt::Failed(format!("watch stream: {e}"))),
            }
            let v: Value = serde_json::from_str(line.trim()).map_err(|_| {
                Attempt::Answer(GwError::Protocol(format!(
                    "HTTP {status} from {base}/v3/watch: {}",
                    snippet(&line)
                )))
            })?;
            if let Some(e) = server_error(&v).or_else(|| v.get("error").and_then(server_error)) {
                return Err(match e {
                    GwError::Server { code, message } if is_retryable(code, &message) => {
                        Attempt::Failed(message)
                    }
                    e => Attempt::Answer(e),
                });
            }
            let result = v.get("result").unwrap_or(&v);
            let compacted = int(result, "compact_revision");
            if compacted > 0 {
                crate::trace::step(|| {
                    format!(
                        "etcd: the watch from revision {from} was compacted (history kept from {compacted}): looking again"
                    )
                });
                return Ok(WatchEnd::Compacted);
            }
            if result.get("canceled").and_then(Value::as_bool) == Some(true) {
                let reason = result
                    .get("cancel_reason")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                // An auth refusal comes as a canceled watch: say so, do not retry.
                return Err(if reason.contains("invalid auth token") {
                    Attempt::Answer(GwError::Server {
                        code: CODE_UNAUTHENTICATED,
                        message: reason,
                    })
                } else if reason.contains("user name is empty")
                    || reason.contains("permission denied")
                {
                    Attempt::Answer(classify(CODE_PERMISSION_DENIED, reason))
                } else {
                    Attempt::Failed(format!("watch canceled: {reason}"))
                });
            }
            let events = result.get("events").and_then(Value::as_array);
            for event in events.into_iter().flatten() {
                let rev = event.get("kv").map_or(0, |kv| int(kv, "mod_revision"));
                if rev >= *from {
                    *from = rev + 1;
                }
                if event.get("type").and_then(Value::as_str) == Some("DELETE") {
                    return Ok(WatchEnd::Deleted);
                }
            }
        }
    }
}

/// One member's answer to `/v3/maintenance/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemberStatus {
    /// Who answered (the answer's header).
    pub(crate) member: u64,
    /// The leader it follows; 0 when it knows none (an election is on, or it is cut off).
    pub(crate) leader: u64,
    pub(crate) learner: bool,
}

/// How a wait for a key's deletion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    Deleted,
    LookAgain,
    TimedOut,
}

enum WatchEnd {
    Deleted,
    TimedOut,
    Compacted,
}

/// How one attempt at one member ended, when not with an answer.
enum Attempt {
    /// The member answered: this is the answer (no other member would say otherwise).
    Answer(GwError),
    /// No usable answer: try another member.
    Failed(String),
}

fn unreachable(failures: Vec<String>) -> GwError {
    if failures.is_empty() {
        GwError::Unreachable("no member answered in time".into())
    } else {
        GwError::Unreachable(failures.join("; "))
    }
}

/// etcd's error answer `{"error": ..., "code": N, "message": ...}`, if it is one.
fn server_error(v: &Value) -> Option<GwError> {
    let code = v.get("code")?.as_i64()?;
    if code == 0 {
        return None;
    }
    let message = v
        .get("message")
        .or_else(|| v.get("error"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Some(classify(code, message))
}

/// An error answer as lockrun reports it: auth problems apart (exit 77).
fn classify(code: i64, message: String) -> GwError {
    if message.contains("user name is empty") {
        return GwError::Auth(
            "etcd requires a user and password: set LOCKRUN_ETCD_USER and LOCKRUN_ETCD_PASSWORD"
                .into(),
        );
    }
    match code {
        CODE_PERMISSION_DENIED => GwError::Auth(message.trim_start_matches("etcdserver: ").into()),
        CODE_INVALID_ARGUMENT if message.contains("authentication failed") => {
            GwError::Auth(message.trim_start_matches("etcdserver: ").into())
        }
        _ => GwError::Server { code, message },
    }
}

/// Answers another member may not give: no leader, timed out inside etcd, stopping.
fn is_retryable(code: i64, message: &str) -> bool {
    // 14 unavailable, 4 deadline exceeded; etcd also says "leader changed" (code 2) or
    // "no leader" while electing.
    matches!(code, 14 | 4)
        || message.contains("no leader")
        || message.contains("leader changed")
        || message.contains("request timed out")
        || message.contains("server stopped")
}

fn transport_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "no answer in time".into(),
        ureq::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

fn snippet(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_string(),
    }
}

/// An int64 field (a decimal string in the gateway's JSON); 0 when absent.
fn int(v: &Value, field: &str) -> i64 {
    match v.get(field) {
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

/// A uint64 field (member IDs use all 64 bits); 0 when absent.
fn uint(v: &Value, field: &str) -> u64 {
    match v.get(field) {
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

fn header_revision(v: &Value) -> i64 {
    v.get("header").map_or(0, |h| int(h, "revision"))
}

fn bytes(v: &Value, field: &str) -> Result<Vec<u8>, GwError> {
    match v.get(field).and_then(Value::as_str) {
        None => Ok(Vec::new()),
        Some(s) => B64
            .decode(s)
            .map_err(|e| GwError::Protocol(format!("{field} is not base64: {e}"))),
    }
}

fn parse_range(v: &Value, revision: i64) -> Result<Range, GwError> {
    let mut kvs = Vec::new();
    for kv in v.get("kvs").and_then(Value::as_array).into_iter().flatten() {
        kvs.push(Kv {
            key: bytes(kv, "key")?,
            value: bytes(kv, "value")?,
            create_revision: int(kv, "create_revision"),
            mod_revision: int(kv, "mod_revision"),
            lease: int(kv, "lease"),
        });
    }
    let revision = if revision == 0 {
        header_revision(v)
    } else {
        revision
    };
    Ok(Range { kvs, revision })
}

#[cfg(target_os = "linux")]
fn with_tls(
    config: ureq::config::ConfigBuilder<ureq::typestate::AgentScope>,
    tls: &Tls,
) -> Result<ureq::config::ConfigBuilder<ureq::typestate::AgentScope>, GwError> {
    Ok(config.tls_config(tls_config(tls)?))
}

#[cfg(not(target_os = "linux"))]
fn with_tls(
    _config: ureq::config::ConfigBuilder<ureq::typestate::AgentScope>,
    _tls: &Tls,
) -> Result<ureq::config::ConfigBuilder<ureq::typestate::AgentScope>, GwError> {
    Err(GwError::Tls(
        "etcds:// (TLS) is built into lockrun on Linux only, for now; use etcd://".into(),
    ))
}

#[cfg(target_os = "linux")]
fn tls_config(tls: &Tls) -> Result<ureq::tls::TlsConfig, GwError> {
    use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
    let mut builder = TlsConfig::builder();
    if let Some(ca) = &tls.ca {
        let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(ca)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(GwError::Tls("the CA file holds no PEM certificate".into()));
        }
        builder = builder.root_certs(RootCerts::Specific(Arc::new(certs)));
    }
    if let Some((chain, key)) = &tls.client {
        let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(chain)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(GwError::Tls(
                "the client certificate file holds no PEM certificate".into(),
            ));
        }
        let key = PrivateKey::from_pem(key)
            .map_err(|e| GwError::Tls(format!("the client key file: {e}")))?;
        builder = builder.client_cert(Some(ClientCert::new_with_certs(&certs, key)));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int64s_arrive_as_strings_and_zero_is_left_out() {
        let v = json!({ "ID": "7587869372727006214", "TTL": "2" });
        assert_eq!(int(&v, "ID"), 7_587_869_372_727_006_214);
        assert_eq!(int(&v, "TTL"), 2);
        assert_eq!(int(&v, "missing"), 0);
    }

    #[test]
    fn an_error_answer_is_told_from_a_result() {
        let e = json!({"error":"etcdserver: permission denied","message":"etcdserver: permission denied","code":7});
        assert!(matches!(server_error(&e), Some(GwError::Auth(_))));
        let e = json!({"error":"etcdserver: invalid auth token","code":16,"message":"etcdserver: invalid auth token"});
        assert!(matches!(
            server_error(&e),
            Some(GwError::Server { code: 16, .. })
        ));
        assert!(server_error(&json!({"header": {"revision": "3"}})).is_none());
    }
}
