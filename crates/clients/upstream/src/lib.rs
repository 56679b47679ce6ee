//! Shared plumbing for fpr's upstream HTTP clients (YubiEnterprise, Microsoft Graph, Okta):
//! one classification of responses into the errors the orchestrator acts on, and secrets read
//! from a file or variable at each use, so rotation needs no restart.
//!
//! It never logs or returns a secret or a response body beyond the upstream's own error code
//! and message.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use secrecy::SecretString;

/// How an upstream call failed, as the orchestrator needs to know it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Timeout, connection failure, 5xx or 429: try again later (after `retry_after` seconds
    /// when the upstream said so).
    #[error("{upstream}: {reason}")]
    Transient {
        /// Which upstream.
        upstream: &'static str,
        /// What happened (status or transport error; no body).
        reason: String,
        /// Seconds from Retry-After.
        retry_after: Option<i64>,
        /// False when the upstream certainly did nothing (429, connection refused); true when
        /// a write may have taken effect (timeout, 5xx).
        maybe_applied: bool,
    },
    /// 404: the thing does not exist (a deleted shipment, an unknown user).
    #[error("{upstream}: not found: {message}")]
    NotFound {
        /// Which upstream.
        upstream: &'static str,
        /// The upstream's message.
        message: String,
    },
    /// 401 or 403: our credentials are wrong or lack a permission.
    #[error("{upstream}: HTTP {status}: {message}")]
    Unauthorized {
        /// Which upstream.
        upstream: &'static str,
        /// 401 or 403.
        status: u16,
        /// The upstream's message.
        message: String,
    },
    /// Another 4xx: the upstream refused the request; `code` and `message` come from its body.
    #[error("{upstream}: HTTP {status} {code}: {message}")]
    Rejected {
        /// Which upstream.
        upstream: &'static str,
        /// The status.
        status: u16,
        /// The upstream's error code (`badRequest`, `E0000001`, a field name, …).
        code: String,
        /// The upstream's message.
        message: String,
    },
    /// A success answer we could not read.
    #[error("{upstream}: unexpected answer: {reason}")]
    Malformed {
        /// Which upstream.
        upstream: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// A configured secret could not be read.
    #[error("secret {name}: {reason}")]
    Secret {
        /// The setting.
        name: &'static str,
        /// Why (never the value).
        reason: String,
    },
}

impl Error {
    /// True for errors worth retrying.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Transient { .. })
    }

    /// True when a write that failed this way may still have taken effect upstream: a timeout,
    /// a 5xx, a connection lost after the request was sent, or a 2xx whose body could not be
    /// read. Such a write is reconciled, never repeated blindly. False when the upstream
    /// certainly did nothing: a 429, a refused connection, a 4xx, our own secret missing.
    pub fn maybe_applied(&self) -> bool {
        match self {
            Error::Transient { maybe_applied, .. } => *maybe_applied,
            Error::Malformed { .. } => true,
            Error::NotFound { .. }
            | Error::Unauthorized { .. }
            | Error::Rejected { .. }
            | Error::Secret { .. } => false,
        }
    }
}

/// The longest wait fpr takes from an upstream's `Retry-After` or `X-Rate-Limit-Reset`: a
/// larger (or absurd) value is cut to this, so no shipment sleeps for days on one header.
pub const MAX_RETRY_AFTER_SECS: i64 = 3600;

/// Seconds to wait from an answer's headers: `Retry-After` (seconds), else Okta's
/// `X-Rate-Limit-Reset` (UTC epoch seconds of the window's end) less `now`; at most
/// [`MAX_RETRY_AFTER_SECS`], never negative.
pub fn retry_after_of(headers: &reqwest::header::HeaderMap, now: i64) -> Option<i64> {
    let num = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    let wait = num("retry-after").or_else(|| {
        num("x-rate-limit-reset").map(|reset| reset.saturating_sub(now).saturating_add(1))
    })?;
    Some(wait.clamp(0, MAX_RETRY_AFTER_SECS))
}

/// Classifies a non-success status with the code and message taken from its body.
///
/// # Example
///
/// ```
/// use fpr_upstream::{Error, classify_status};
/// assert!(matches!(classify_status("graph", 429, None, Some(3), "throttled"), Error::Transient { retry_after: Some(3), .. }));
/// assert!(matches!(classify_status("graph", 404, None, None, "no user"), Error::NotFound { .. }));
/// ```
pub fn classify_status(
    upstream: &'static str,
    status: u16,
    code: Option<String>,
    retry_after: Option<i64>,
    message: &str,
) -> Error {
    let message: String = message.chars().take(300).collect();
    match status {
        429 => Error::Transient {
            upstream,
            reason: format!("HTTP {status}: {message}"),
            retry_after,
            maybe_applied: false,
        },
        500..=599 | 408 => Error::Transient {
            upstream,
            reason: format!("HTTP {status}: {message}"),
            retry_after,
            maybe_applied: true,
        },
        404 => Error::NotFound { upstream, message },
        401 | 403 => Error::Unauthorized {
            upstream,
            status,
            message,
        },
        _ => Error::Rejected {
            upstream,
            status,
            code: code.unwrap_or_default(),
            message,
        },
    }
}

/// Pulls an error code and message out of the common error bodies: Graph
/// `{"error":{"code","message"}}`, OAuth `{"error","error_description"}`, Okta
/// `{"errorCode","errorSummary","errorCauses"}`, YubiEnterprise `{"message","field"}`.
pub fn error_of(body: &[u8]) -> (Option<String>, String) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (
            None,
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        );
    };
    let s = |p: &str| v.pointer(p).and_then(|x| x.as_str()).map(str::to_owned);
    if let Some(code) = s("/error/code") {
        let message = s("/error/message").unwrap_or_default();
        // Graph's innerError names the request as Entra's audit log does ("Correlation ID").
        return (
            Some(code),
            match s("/error/innerError/client-request-id") {
                Some(id) => format!("{message} (client-request-id {id})"),
                None => message,
            },
        );
    }
    if let Some(code) = s("/errorCode") {
        let cause = s("/errorCauses/errorSummary").or_else(|| s("/errorCauses/0/errorSummary"));
        let summary = s("/errorSummary").unwrap_or_default();
        return (
            Some(code),
            cause.map_or(summary.clone(), |c| format!("{summary} ({c})")),
        );
    }
    if let Some(e) = s("/error") {
        return (
            Some(e),
            s("/error_description")
                .or_else(|| s("/message"))
                .unwrap_or_default(),
        );
    }
    (s("/field"), s("/message").unwrap_or_default())
}

/// Sends `req` and returns the body of a 2xx answer, or the classified error. `route` is the
/// request's template (`POST /fpr/shipments`, ids as `{id}`): it labels the metrics
/// `fpr_upstream_requests_total` (with the status, or `timeout` / `error`),
/// `fpr_upstream_request_duration_seconds` and `fpr_upstream_retry_after_seconds`.
pub async fn send(
    upstream: &'static str,
    route: &'static str,
    req: reqwest::RequestBuilder,
) -> Result<(u16, Vec<u8>), Error> {
    send_paged(upstream, route, req)
        .await
        .map(|(status, body, _)| (status, body))
}

/// [`send`], and the URL of the next page when the answer has a `Link: <…>; rel="next"`
/// header (Okta's paging).
pub async fn send_paged(
    upstream: &'static str,
    route: &'static str,
    req: reqwest::RequestBuilder,
) -> Result<(u16, Vec<u8>, Option<String>), Error> {
    send_paced(None, upstream, route, req).await
}

/// [`send_paged`], first waiting for `pacer` to admit the call and then telling it the
/// rate-limit headers of the answer.
pub async fn send_paced(
    pacer: Option<&Pacer>,
    upstream: &'static str,
    route: &'static str,
    req: reqwest::RequestBuilder,
) -> Result<(u16, Vec<u8>, Option<String>), Error> {
    use tracing::Instrument as _;
    if let Some(p) = pacer {
        p.admit().await;
    }
    let started = std::time::Instant::now();
    let result = send_timed(upstream, req, pacer)
        .instrument(tracing::info_span!("upstream", upstream, route))
        .await;
    let status = status_label(&result);
    metrics::counter!("fpr_upstream_requests_total", "upstream" => upstream, "route" => route, "status" => status).increment(1);
    metrics::histogram!("fpr_upstream_request_duration_seconds", "upstream" => upstream, "route" => route)
        .record(started.elapsed().as_secs_f64());
    if let Err(Error::Transient {
        retry_after: Some(wait),
        ..
    }) = &result
    {
        metrics::histogram!("fpr_upstream_retry_after_seconds", "upstream" => upstream)
            .record(*wait as f64);
    }
    result
}

/// Keeps a client within the rate limit an upstream announces on its answers (Okta's
/// `X-Rate-Limit-Remaining` and `X-Rate-Limit-Reset`): once the window's calls are spent,
/// callers wait for the window to reset instead of drawing 429s, which cost a retry after a
/// backoff and which Okta reports to the org's admins. One window per client, whichever route
/// it came from: conservative where the upstream counts routes apart.
#[derive(Debug, Default)]
pub struct Pacer {
    window: std::sync::Mutex<Window>,
}

/// The last window an upstream announced: when it resets (UTC epoch seconds) and the calls
/// left in it, less the calls admitted since.
#[derive(Debug, Default)]
struct Window {
    reset: i64,
    remaining: Option<i64>,
}

// === impl Pacer ===

impl Pacer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until the current window has a call left (or has reset), then counts the call.
    pub async fn admit(&self) {
        self.wait(true).await;
    }

    /// Waits until the current window has a call left (or has reset), counting nothing: for
    /// a caller that gathers work while it waits and then makes the call (which `admit`s).
    pub async fn ready(&self) {
        self.wait(false).await;
    }

    async fn wait(&self, count: bool) {
        loop {
            let wait = {
                let mut w = self.lock();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                let reset = std::time::Duration::from_secs(u64::try_from(w.reset).unwrap_or(0));
                match &mut w.remaining {
                    Some(left) if *left <= 0 && now < reset => Some(reset - now),
                    Some(left) => {
                        if count {
                            *left -= 1;
                        }
                        None
                    }
                    None => None,
                }
            };
            match wait {
                Some(d) => {
                    let cap = std::time::Duration::from_secs(MAX_RETRY_AFTER_SECS as u64);
                    tokio::time::sleep(d.min(cap)).await;
                }
                None => return,
            }
        }
    }

    /// Takes the window announced by an answer's headers at `now` (UTC epoch seconds).
    pub fn observe(&self, headers: &reqwest::header::HeaderMap, now: i64) {
        let num = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        let (Some(remaining), Some(reset)) =
            (num("x-rate-limit-remaining"), num("x-rate-limit-reset"))
        else {
            return;
        };
        let reset = reset.min(now.saturating_add(MAX_RETRY_AFTER_SECS));
        let mut w = self.lock();
        if reset > w.reset {
            *w = Window {
                reset,
                remaining: Some(remaining),
            };
        } else if reset == w.reset {
            // Answers arrive out of order: the lowest count of a window is the latest.
            w.remaining = Some(w.remaining.map_or(remaining, |r| r.min(remaining)));
        }
    }
}

/// The `rel="next"` target of `Link` headers (RFC 8288), if any.
pub fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.trim().split_once(';')?;
            let next = params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            next.then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
        })
}

/// The `status` label of a request's outcome: the HTTP status, or what stopped it.
fn status_label(result: &Result<(u16, Vec<u8>, Option<String>), Error>) -> String {
    match result {
        Ok((s, _, _)) => s.to_string(),
        Err(Error::Transient { reason, .. }) => match reason.strip_prefix("HTTP ") {
            Some(r) => r.chars().take_while(char::is_ascii_digit).collect(),
            None if reason == "timed out" => "timeout".into(),
            None => "error".into(),
        },
        Err(Error::NotFound { .. }) => "404".into(),
        Err(Error::Unauthorized { status, .. } | Error::Rejected { status, .. }) => {
            status.to_string()
        }
        Err(Error::Malformed { .. }) => "malformed".into(),
        Err(Error::Secret { .. }) => "secret".into(),
    }
}

async fn send_timed(
    upstream: &'static str,
    req: reqwest::RequestBuilder,
    pacer: Option<&Pacer>,
) -> Result<(u16, Vec<u8>, Option<String>), Error> {
    let resp = req.send().await.map_err(|e| {
        let maybe_applied = !e.is_connect();
        Error::Transient {
            upstream,
            reason: if e.is_timeout() {
                "timed out".into()
            } else {
                format!("request failed: {}", e.without_url())
            },
            retry_after: None,
            maybe_applied,
        }
    })?;
    let status = resp.status().as_u16();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let retry_after = retry_after_of(resp.headers(), now);
    if let Some(p) = pacer {
        p.observe(resp.headers(), now);
    }
    let next = next_link(resp.headers());
    let body = read_capped(upstream, resp).await?;
    if (200..300).contains(&status) {
        return Ok((status, body.to_vec(), next));
    }
    let (code, message) = error_of(&body);
    tracing::debug!(
        upstream,
        status,
        code = code.as_deref().unwrap_or(""),
        "Upstream refused"
    );
    Err(classify_status(
        upstream,
        status,
        code,
        retry_after,
        &message,
    ))
}

/// Parses a JSON answer.
pub fn json<T: serde::de::DeserializeOwned>(
    upstream: &'static str,
    body: &[u8],
) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::Malformed {
        upstream,
        reason: e.to_string(),
    })
}

/// Where a secret comes from; read at each use.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// A file (trailing whitespace trimmed).
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A value given in code (tests, `fpr up`).
    Inline(std::sync::Arc<SecretString>),
}

impl SecretSource {
    /// Reads the secret now.
    pub fn read(&self, name: &'static str) -> Result<SecretString, Error> {
        let bad = |reason: String| Error::Secret { name, reason };
        let value = match self {
            SecretSource::File(p) => std::fs::read_to_string(p)
                .map_err(|e| bad(format!("{}: {}", p.display(), e.kind())))?
                .trim()
                .to_owned(),
            SecretSource::Env(v) => std::env::var(v)
                .map_err(|_| bad(format!("environment variable {v} is not set")))?
                .trim()
                .to_owned(),
            SecretSource::Inline(s) => {
                return Ok(SecretString::from(
                    secrecy::ExposeSecret::expose_secret(&**s).to_owned(),
                ));
            }
        };
        if value.is_empty() {
            return Err(bad("empty".into()));
        }
        Ok(SecretString::from(value))
    }
}

/// Percent-encodes `s` as one URL path segment: an id from an upstream or a caller can never
/// add a segment, a query or a fragment to the path it is placed in.
pub fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The default cap on an upstream answer's body: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

static MAX_BODY: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_BODY);

/// Sets the cap on every upstream answer's body read from now on (at least 4 KiB).
pub fn set_max_body(bytes: usize) {
    MAX_BODY.store(bytes.max(4096), Ordering::Relaxed);
}

/// The cap on an upstream answer's body.
pub fn max_body() -> usize {
    MAX_BODY.load(Ordering::Relaxed)
}

/// Reads an answer's body, refusing one over [`max_body`] bytes (by Content-Length before
/// reading, or as the bytes arrive) so a hostile or broken upstream cannot exhaust memory.
pub async fn read_capped(
    upstream: &'static str,
    mut resp: reqwest::Response,
) -> Result<Vec<u8>, Error> {
    let cap = max_body();
    let too_big = |n: u64| Error::Malformed {
        upstream,
        reason: format!("the answer is over {cap} bytes ({n} or more)"),
    };
    if let Some(n) = resp.content_length()
        && n > cap as u64
    {
        return Err(too_big(n));
    }
    let mut body = Vec::new();
    loop {
        let chunk = resp.chunk().await.map_err(|e| Error::Transient {
            upstream,
            reason: format!("reading the answer: {}", e.without_url()),
            retry_after: None,
            maybe_applied: true,
        })?;
        let Some(chunk) = chunk else { break };
        if body.len() + chunk.len() > cap {
            return Err(too_big((body.len() + chunk.len()) as u64));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Follows at most 5 redirects and never one from https to another scheme: a redirect must not
/// carry a bearer token or a request body onto a plaintext connection.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let downgrade = attempt.previous().iter().any(|u| u.scheme() == "https")
            && attempt.url().scheme() != "https";
        if downgrade {
            attempt.error("refused a redirect from https to a plaintext URL")
        } else if attempt.previous().len() > 5 {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}

/// An HTTP client with fpr's user agent and `timeout` per request, that never follows a
/// redirect from https to http.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(redirect_policy())
        .user_agent(concat!("fpr/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Malformed {
            upstream: "http",
            reason: e.to_string(),
        })
}

/// A client for fetching signing keys (JWKS): follows no redirect at all.
pub fn key_fetch_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("fpr/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// GETs `url` with `client` and returns a 2xx body, capped at [`max_body`]; a redirect is an
/// error.
pub async fn fetch_capped(client: &reqwest::Client, url: url::Url) -> Result<Vec<u8>, Error> {
    send("keys", "GET jwks", client.get(url))
        .await
        .map(|(_, body)| body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(remaining: i64, reset: i64) -> reqwest::header::HeaderMap {
        let mut m = reqwest::header::HeaderMap::new();
        m.insert("x-rate-limit-remaining", remaining.into());
        m.insert("x-rate-limit-reset", reset.into());
        m
    }

    fn epoch() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }

    #[tokio::test]
    async fn the_pacer_admits_what_the_window_has_left_then_waits_for_its_reset() {
        let p = Pacer::default();
        let quick = std::time::Duration::from_millis(200);
        // Nothing announced yet: calls go.
        assert!(tokio::time::timeout(quick, p.admit()).await.is_ok());
        let now = epoch();
        p.observe(&rate(2, now + 3), now);
        // A later answer of the same window, read earlier, does not raise the count.
        p.observe(&rate(5, now + 3), now);
        // Asking whether a call could go counts none.
        assert!(tokio::time::timeout(quick, p.ready()).await.is_ok());
        assert!(tokio::time::timeout(quick, p.ready()).await.is_ok());
        assert!(tokio::time::timeout(quick, p.admit()).await.is_ok());
        assert!(tokio::time::timeout(quick, p.admit()).await.is_ok());
        // Spent: the next call waits for the reset (2 s away at least), and so does one
        // that only asks whether a call could go.
        assert!(tokio::time::timeout(quick, p.admit()).await.is_err());
        assert!(tokio::time::timeout(quick, p.ready()).await.is_err());
        // A window that has reset admits again; an answer without the headers changes nothing.
        p.observe(&reqwest::header::HeaderMap::new(), now);
        p.observe(&rate(1, now - 1 + 10), now);
        assert!(tokio::time::timeout(quick, p.admit()).await.is_ok());
    }

    #[test]
    fn retry_after_from_either_header_is_capped() {
        let h = |pairs: &[(&'static str, &str)]| {
            let mut m = reqwest::header::HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            m
        };
        assert_eq!(retry_after_of(&h(&[("retry-after", "7")]), 0), Some(7));
        // Okta: the window's end as epoch seconds.
        assert_eq!(
            retry_after_of(&h(&[("x-rate-limit-reset", "1000")]), 990),
            Some(11)
        );
        assert_eq!(
            retry_after_of(&h(&[("x-rate-limit-reset", "900")]), 990),
            Some(0)
        );
        assert_eq!(
            retry_after_of(&h(&[("retry-after", "99999999999")]), 0),
            Some(MAX_RETRY_AFTER_SECS)
        );
        assert_eq!(
            retry_after_of(&h(&[("x-rate-limit-reset", &i64::MAX.to_string())]), -5),
            Some(MAX_RETRY_AFTER_SECS)
        );
        assert_eq!(retry_after_of(&h(&[]), 0), None);
    }

    #[test]
    fn error_bodies_of_every_upstream() {
        assert_eq!(
            error_of(br#"{"error":{"code":"badRequest","message":"m"}}"#),
            (Some("badRequest".into()), "m".into())
        );
        assert_eq!(
            error_of(br#"{"error":{"code":"badRequest","message":"m","innerError":{"date":"2026-11-28T10:00:00","request-id":"r1","client-request-id":"c7f1e2a0-0000-4000-8000-000000000001"}}}"#).1,
            "m (client-request-id c7f1e2a0-0000-4000-8000-000000000001)"
        );
        assert_eq!(
            error_of(br#"{"error":"invalid_client","error_description":"AADSTS7000215: x"}"#)
                .0
                .as_deref(),
            Some("invalid_client")
        );
        let (c, m) = error_of(br#"{"errorCode":"E0000001","errorSummary":"Api validation failed","errorCauses":{"errorSummary":"why"}}"#);
        assert_eq!(
            (c.as_deref(), m.as_str()),
            (Some("E0000001"), "Api validation failed (why)")
        );
        assert_eq!(
            error_of(br#"{"message":"too long","field":"recipient.recipient_firstname"}"#)
                .0
                .as_deref(),
            Some("recipient.recipient_firstname")
        );
        assert!(classify_status("x", 503, None, None, "").is_transient());
        assert!(classify_status("x", 503, None, None, "").maybe_applied());
        assert!(!classify_status("x", 429, None, None, "").maybe_applied());
        assert!(matches!(
            classify_status("x", 400, Some("f".into()), None, "m"),
            Error::Rejected { status: 400, .. }
        ));
    }

    #[test]
    fn next_link_is_found_among_links() {
        let mut m = reqwest::header::HeaderMap::new();
        m.append(
            "link",
            "<https://o.test/api/v1/groups/g/users?limit=2>; rel=\"self\""
                .parse()
                .unwrap(),
        );
        m.append(
            "link",
            "<https://o.test/api/v1/groups/g/users?after=00u2&limit=2>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&m).as_deref(),
            Some("https://o.test/api/v1/groups/g/users?after=00u2&limit=2")
        );
        let mut last = reqwest::header::HeaderMap::new();
        last.append("link", "<https://o.test/x>; rel=\"self\"".parse().unwrap());
        assert_eq!(next_link(&last), None);
    }
}
