//! Errors of the REST API in the connector's shape (`error_code`, `error_message`,
//! `error_data`), mapped once from gRPC statuses and from shipments that stopped on an error.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use fpr_domain::model::Record;
use serde_json::json;
use tonic::Code;
use tonic_types::StatusExt as _;

use super::body::ApiError;
use crate::auth::Refusal;

/// A refused or failed call.
#[derive(Debug)]
pub struct Failure {
    status: StatusCode,
    body: Box<ApiError>,
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(*self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

/// The violations a status carries (field and rule each).
fn violations(s: &tonic::Status) -> Vec<(String, String)> {
    s.get_error_details()
        .bad_request()
        .map(|b| {
            b.field_violations
                .iter()
                .map(|v| (v.field.clone(), v.description.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// YubiEnterprise's code and message in a stored `yubienterprise: HTTP 400 code: message`.
fn ye_parts(message: &str) -> (String, String) {
    message
        .split_once("HTTP ")
        .and_then(|(_, rest)| rest.split_once(' '))
        .and_then(|(_, rest)| rest.split_once(": "))
        .map_or_else(
            || ("error".to_owned(), message.to_owned()),
            |(code, m)| (code.to_owned(), m.to_owned()),
        )
}

impl Failure {
    /// A failure with no details.
    pub fn new(status: StatusCode, code: &str, message: String) -> Self {
        Self::with(status, code, message, None)
    }

    fn with(
        status: StatusCode,
        code: &str,
        message: String,
        data: Option<serde_json::Value>,
    ) -> Self {
        Self {
            status,
            body: Box::new(ApiError {
                error_code: code.to_owned(),
                error_message: message,
                error_data: data,
            }),
        }
    }

    /// A refused token.
    pub fn refused(r: Refusal) -> Self {
        match r {
            Refusal::Unauthenticated(m) => Self::new(StatusCode::UNAUTHORIZED, "unauthorized", m),
            Refusal::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, "forbidden", m),
        }
    }

    /// Something fpr itself failed at (logged; the caller sees no detail).
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %e, "REST internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error".into(),
        )
    }

    /// A body that is not the request's JSON.
    pub fn bad_json(e: JsonRejection) -> Self {
        Self::with(
            StatusCode::BAD_REQUEST,
            "api_error",
            e.body_text(),
            Some(json!({"error_type": "validation"})),
        )
    }

    /// A refused CreateShipment. Violations in `yubico_shipment_request` are what
    /// YubiEnterprise would refuse, so they read as the connector's `ye_error`; an unknown
    /// user (Okta's profile lookup) as its `idp_error`.
    pub fn from_create(s: &tonic::Status, user: &str) -> Self {
        match s.code() {
            Code::InvalidArgument => {
                let vs = violations(s);
                let list: Vec<_> = vs
                    .iter()
                    .map(|(f, r)| json!({"field": f, "rule": r}))
                    .collect();
                if !vs.is_empty()
                    && vs
                        .iter()
                        .all(|(f, _)| f.starts_with("yubico_shipment_request."))
                {
                    return Self::with(
                        StatusCode::BAD_REQUEST,
                        "ye_error",
                        "Validation error when creating YED shipment".into(),
                        Some(json!({
                            "code": "validation_error",
                            "message": s.message(),
                            "violations": list,
                        })),
                    );
                }
                Self::with(
                    StatusCode::BAD_REQUEST,
                    "api_error",
                    s.message().to_owned(),
                    Some(json!({"error_type": "validation", "violations": list})),
                )
            }
            // A replayed Idempotency-Key whose shipment was cleaned up since.
            Code::NotFound if s.message().starts_with("shipment ") => Self::from_status(s),
            Code::NotFound => Self::with(
                StatusCode::BAD_REQUEST,
                "idp_error",
                format!("Could not find user: {user}"),
                None,
            ),
            _ => Self::from_status(s),
        }
    }

    /// A gRPC status as HTTP.
    pub fn from_status(s: &tonic::Status) -> Self {
        let m = s.message().to_owned();
        match s.code() {
            Code::InvalidArgument => Self::with(
                StatusCode::BAD_REQUEST,
                "api_error",
                m,
                Some(json!({"error_type": "validation"})),
            ),
            Code::NotFound => Self::new(StatusCode::NOT_FOUND, "not_found", m),
            Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => {
                Self::new(StatusCode::CONFLICT, "conflict", m)
            }
            Code::Unauthenticated => Self::new(StatusCode::UNAUTHORIZED, "unauthorized", m),
            Code::PermissionDenied => Self::new(StatusCode::FORBIDDEN, "forbidden", m),
            Code::Unavailable | Code::ResourceExhausted | Code::DeadlineExceeded => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
            }
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error".into(),
            ),
        }
    }

    /// A shipment that stopped on an error while its order was being placed.
    pub fn from_record(rec: &Record) -> Self {
        let kind = rec.error_kind.as_str();
        let mut data = json!({"fpr_shipment_id": rec.id, "fpr_error_kind": kind});
        let (code, message) = match kind {
            "yubienterprise_rejected" | "yubienterprise_failed" => {
                let (c, m) = ye_parts(&rec.error_message);
                data["code"] = json!(c);
                data["message"] = json!(m);
                let what = if c.contains("validation") {
                    "Validation error when creating YED shipment"
                } else {
                    "Error when creating YED shipment"
                };
                ("ye_error", what.to_owned())
            }
            "user_not_found" => ("idp_error", format!("Could not find user: {}", rec.user_id)),
            "manager_lookup_failed" | "creation_options_failed" => {
                ("idp_error", rec.error_message.clone())
            }
            k if k.starts_with("okta_") => ("idp_error", rec.error_message.clone()),
            _ => {
                data["error_type"] = json!(kind);
                ("api_error", rec.error_message.clone())
            }
        };
        Self::with(StatusCode::BAD_REQUEST, code, message, Some(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yubienterprise_code_and_message_are_read_back() {
        assert_eq!(
            ye_parts("yubienterprise: HTTP 400 validation_error: Input for Last Name exceeded"),
            (
                "validation_error".into(),
                "Input for Last Name exceeded".into()
            )
        );
        assert_eq!(ye_parts("odd"), ("error".into(), "odd".into()));
    }
}
