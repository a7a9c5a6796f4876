//! The AWS query protocol as STS speaks it: form-encoded requests, XML replies.
//! https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html

use std::collections::HashMap;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Decodes `application/x-www-form-urlencoded` pairs.
pub fn parse_form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `<{action}Response><{action}Result>{result}</...><ResponseMetadata>...`
pub fn ok(action: &str, result_xml: &str, request_id: &str) -> Response {
    let body = format!(
        "<{action}Response xmlns=\"{XMLNS}\">\n  <{action}Result>\n{result_xml}  </{action}Result>\n  \
         <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n"
    );
    xml(StatusCode::OK, body, request_id)
}

pub fn error(err: &ApiError, request_id: &str) -> Response {
    let kind = if err.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let body = format!(
        "<ErrorResponse xmlns=\"{XMLNS}\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{}</Code>\n    \
         <Message>{}</Message>\n  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n",
        escape(err.code),
        escape(&err.message)
    );
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
    xml(status, body, request_id)
}

fn xml(status: StatusCode, body: String, request_id: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/xml".to_string()),
            (
                header::HeaderName::from_static("x-amzn-requestid"),
                request_id.to_string(),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms() {
        let f = parse_form(
            "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx&RoleSessionName=a+b&Bad=%zz",
        );
        assert_eq!(f["Action"], "AssumeRole");
        assert_eq!(f["RoleArn"], "arn:aws:iam::1:role/x");
        assert_eq!(f["RoleSessionName"], "a b");
        assert_eq!(f["Bad"], "%zz");
    }
}
