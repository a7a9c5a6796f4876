//! AWS JSON 1.1 as SSM speaks it: `POST /` with `X-Amz-Target: AmazonSSM.<Op>`,
//! errors as `{"__type": "<Code>", "message": "..."}` with the code's HTTP status.
//! https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiError;

pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
pub const TARGET_PREFIX: &str = "AmazonSSM.";

pub fn ok(body: &Value, request_id: &str) -> Response {
    reply(StatusCode::OK, body.to_string(), request_id)
}

pub fn error(err: &ApiError, request_id: &str) -> Response {
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
    reply(
        status,
        json!({"__type": err.code, "message": err.message}).to_string(),
        request_id,
    )
}

fn reply(status: StatusCode, body: String, request_id: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, CONTENT_TYPE.to_string()),
            (
                header::HeaderName::from_static("x-amzn-requestid"),
                request_id.to_string(),
            ),
        ],
        body,
    )
        .into_response()
}
