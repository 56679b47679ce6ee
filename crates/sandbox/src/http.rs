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

/// Applies the fault configured for `route`, if any: latency, then maybe an injected failure.
/// Returns the response to send instead of the real one.
pub async fn inject(app: &App, route: &str) -> Option<Response> {
    let fault = app.state().faults.get(route).cloned()?;
    if fault.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.latency_ms)).await;
    }
    let mut roll = [0u8; 4];
    let _ = fpr_jose::util::fill_random(&mut roll);
    let p = f64::from(u32::from_le_bytes(roll)) / f64::from(u32::MAX);
    let hit = fault.error_rate > 0.0 && p < fault.error_rate;
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
    if fault.malformed_body && !hit {
        return Some(
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                "{\"truncated\": tr",
            )
                .into_response(),
        );
    }
    let status = StatusCode::from_u16(fault.status.unwrap_or(500))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = json(
        status,
        json!({"error": {"code": "sandboxInjectedFault", "message": format!("fault injected on {route}")}}),
    );
    if status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
    }
    Some(resp)
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
