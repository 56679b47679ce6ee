//! Compact-token splitting and protected-header checks shared by JWE and JWS.

use serde_json::{Map, Value};

use crate::util::b64d;
use crate::{Error, MAX_TOKEN_LEN, Result};

/// Header parameters that name or carry a key, or change processing, and that the profile
/// refuses wherever they appear.
const FORBIDDEN: &[&str] = &[
    "jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256", "crit", "zip", "b64",
];

/// Splits a compact token into exactly `n` parts after the size check.
pub(crate) fn split(token: &str, n: usize) -> Result<Vec<&str>> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::TooLarge {
            len: token.len(),
            limit: MAX_TOKEN_LEN,
        });
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != n {
        return Err(Error::Malformed(if n == 5 {
            "a JWE has five parts"
        } else {
            "a JWS has three parts"
        }));
    }
    Ok(parts)
}

/// Decodes and checks a protected header: a JSON object without forbidden parameters.
pub(crate) fn parse(b64: &str) -> Result<Map<String, Value>> {
    let raw = b64d(b64).map_err(|_| Error::Malformed("header is not base64url"))?;
    let v: Value =
        serde_json::from_slice(&raw).map_err(|_| Error::Malformed("header is not JSON"))?;
    let Value::Object(map) = v else {
        return Err(Error::Malformed("header is not a JSON object"));
    };
    if let Some(name) = FORBIDDEN.iter().find(|n| map.contains_key(**n)) {
        return Err(Error::ForbiddenHeader(name));
    }
    Ok(map)
}

/// A string header parameter that must be present.
pub(crate) fn string<'a>(map: &'a Map<String, Value>, name: &'static str) -> Result<&'a str> {
    map.get(name)
        .and_then(Value::as_str)
        .ok_or(Error::MissingHeader(name))
}
