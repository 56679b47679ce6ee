//! Helpers shared by the simulated services: ids, time, fault injection, rate limits.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::App;

/// Unix seconds now.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// RFC 3339 of unix seconds.
pub fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// `n` random characters from `alphabet`.
pub fn random_chars(n: usize, alphabet: &[u8]) -> String {
    let mut buf = vec![0u8; n];
    let _ = fpr_jose::util::fill_random(&mut buf);
    buf.iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect()
}

const B58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const ALNUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A YubiEnterprise-style id (22 base58 characters).
pub fn ye_id() -> String {
    random_chars(22, B58)
}

/// An Okta-style id with a prefix (`00u`, `fwf`), 20 characters.
pub fn okta_id(prefix: &str) -> String {
    format!("{prefix}{}", random_chars(20 - prefix.len(), ALNUM))
}

/// A random GUID.
pub fn guid() -> String {
    let mut b = [0u8; 16];
    let _ = fpr_jose::util::fill_random(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    fpr_webauthn::aaguid_string(&b)
}

/// A JSON response.
pub fn json(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Applies the fault configured for `route`, if any, before the work: latency, then maybe an
/// injected failure. Returns the response to send instead of the real one. A fault with
/// `after_work` on a mutating route is decided by [`after_work`] instead.
pub async fn inject(app: &App, route: &str) -> Option<Response> {
    if let Ok(mut calls) = app.calls.lock() {
        *calls.entry(route.to_owned()).or_default() += 1;
    }
    let fault = app.state().faults.get(route).cloned()?;
    if fault.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.latency_ms)).await;
    }
    if fault.after_work.is_some() && MUTATING.contains(&route) {
        return None;
    }
    let kind = roll(app, route, &fault)?;
    Some(failure(route, &kind, &fault).await)
}

/// The routes that change upstream state.
const MUTATING: &[&str] = &[
    "ye.create",
    "ye.exact",
    "graph.fido2_post",
    "okta.enroll",
    "okta.activate",
    "okta.send_pin",
];

/// The mutating route a request is for, by method and path.
pub fn mutating_route(method: &axum::http::Method, path: &str) -> Option<&'static str> {
    use axum::http::Method;
    let okta = path.strip_prefix("/webauthn-registration/api/v1/");
    match (method, path) {
        (&Method::POST, "/v1/fpr/shipments") => Some("ye.create"),
        (&Method::PUT | &Method::DELETE, p) if p.starts_with("/v1/shipments_exact/") => {
            Some("ye.exact")
        }
        (&Method::POST, p) if p.ends_with("/authentication/fido2Methods") => {
            Some("graph.fido2_post")
        }
        (&Method::POST, _) => match okta {
            Some("enroll") => Some("okta.enroll"),
            Some("activate") => Some("okta.activate"),
            Some("send-pin") => Some("okta.send_pin"),
            _ => None,
        },
        _ => None,
    }
}

/// Middleware for the faults of mutating routes that have `after_work`: a hit either answers
/// instead of the work (every 429, and the rest of the 5xx and hangs) or lets the handler do
/// the work and then, if it succeeded, answers with the failure instead of the real answer
/// (a share `after_work` of the 5xx and hangs, and every malformed or broken-off 2xx).
pub async fn after_work(
    axum::extract::State(app): axum::extract::State<std::sync::Arc<App>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some((route, fault, share)) =
        mutating_route(req.method(), req.uri().path()).and_then(|r| {
            let f = app.state().faults.get(r).cloned()?;
            let share = f.after_work?;
            Some((r, f, share))
        })
    else {
        return next.run(req).await;
    };
    let Some(kind) = roll(app.as_ref(), route, &fault) else {
        return next.run(req).await;
    };
    // A 2xx means the work was done: a malformed or broken-off 2xx always comes after it.
    let before = match kind.as_str() {
        "429" => true,
        "malformed" | "drop" => false,
        _ => random_unit() >= share,
    };
    if before {
        return failure(route, &kind, &fault).await;
    }
    let resp = next.run(req).await;
    if !resp.status().is_success() {
        return resp;
    }
    tracing::info!(route, kind = %kind, "Fault injected after the work was done");
    failure(route, &kind, &fault).await
}

/// A uniform random number in [0, 1].
fn random_unit() -> f64 {
    let mut roll = [0u8; 4];
    let _ = fpr_jose::util::fill_random(&mut roll);
    f64::from(u32::from_le_bytes(roll)) / f64::from(u32::MAX)
}

/// Rolls the dice for `fault`: on a hit (and while its count lasts), the kind of failure.
fn roll(app: &App, route: &str, fault: &crate::state::Fault) -> Option<String> {
    let hit = fault.error_rate > 0.0 && random_unit() < fault.error_rate;
    if !(hit || fault.malformed_body) {
        return None;
    }
    {
        let mut st = app.state();
        if let Some(f) = st.faults.get_mut(route)
            && let Some(c) = f.count.as_mut()
        {
            if *c == 0 {
                return None;
            }
            *c -= 1;
        }
    }
    Some(if !hit {
        "malformed".to_owned()
    } else if fault.mix.is_empty() {
        fault.status.unwrap_or(500).to_string()
    } else {
        let pick = (random_unit() * fault.mix.len() as f64) as usize;
        fault.mix[pick.min(fault.mix.len() - 1)].clone()
    })
}

/// The failure of `kind` (see [`crate::state::Fault::mix`]).
async fn failure(route: &str, kind: &str, fault: &crate::state::Fault) -> Response {
    match kind {
        "malformed" => (
            StatusCode::OK,
            [("content-type", "application/json")],
            "{\"truncated\": tr",
        )
            .into_response(),
        "drop" => {
            let body = futures_util::stream::once(async {
                Err::<axum::body::Bytes, _>(std::io::Error::other("connection dropped"))
            });
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                axum::body::Body::from_stream(body),
            )
                .into_response()
        }
        "timeout" => {
            tokio::time::sleep(Duration::from_millis(fault.hang_ms.unwrap_or(30_000))).await;
            error_response(route, StatusCode::GATEWAY_TIMEOUT)
        }
        code => error_response(
            route,
            code.parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        ),
    }
}

/// An injected failure with the error body and headers of the service that owns `route`:
/// Okta's `errorCode` body and, for a 429, `X-Rate-Limit-*` headers as Okta sends them;
/// Graph's `error` object; YubiEnterprise's `error`/`message`. 429s elsewhere carry
/// `Retry-After`.
fn error_response(route: &str, status: StatusCode) -> Response {
    let too_many = status == StatusCode::TOO_MANY_REQUESTS;
    let message = format!("fault injected on {route}");
    let body = if route.starts_with("okta.") {
        let (code, summary) = if too_many {
            (
                "E0000047",
                "API call exceeded rate limit due to too many requests.",
            )
        } else {
            ("E0000009", "Internal Server Error")
        };
        json!({"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": "sandboxfault", "errorCauses": []})
    } else if route.starts_with("graph.") || route.starts_with("entra.") {
        json!({"error": {"code": "sandboxInjectedFault", "message": message}})
    } else {
        json!({"error": status.canonical_reason().unwrap_or("Error"), "message": message})
    };
    let mut resp = json(status, body);
    if too_many {
        let h = resp.headers_mut();
        if route.starts_with("okta.") {
            h.insert("x-rate-limit-limit", HeaderValue::from_static("0"));
            h.insert("x-rate-limit-remaining", HeaderValue::from_static("0"));
            if let Ok(v) = HeaderValue::from_str(&(now() + 1).to_string()) {
                h.insert("x-rate-limit-reset", v);
            }
        } else {
            h.insert("retry-after", HeaderValue::from_static("1"));
        }
    }
    resp
}

/// Fixed one-second windows per service, for 429s.
#[derive(Debug, Default)]
pub struct RateWindows {
    windows: HashMap<&'static str, (i64, u32)>,
}

impl RateWindows {
    /// Counts a call; returns (calls in this second, seconds until reset).
    pub fn hit(&mut self, service: &'static str) -> (u32, i64) {
        let t = now();
        let e = self.windows.entry(service).or_insert((t, 0));
        if e.0 != t {
            *e = (t, 0);
        }
        e.1 += 1;
        (e.1, 1)
    }
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Constant-time string equality for tokens and secrets.
pub fn token_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The strings of the JSON array `v[key]` (missing or non-string entries are skipped).
pub fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
