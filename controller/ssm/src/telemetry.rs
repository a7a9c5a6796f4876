//! What the SSM clients report about their calls: an SDK interceptor, so that the attempts
//! and throttles of the SDK's own retries are seen too (the edge's code sees only the
//! final result of each call). The runtime turns the reports into Prometheus metrics.

use std::fmt;
use std::sync::Arc;

use aws_sdk_ssm::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_ssm::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::retries::RequestAttempts;

use crate::error::{ErrorKind, classify_code};

/// Receives one report per attempt and one per call.
pub trait CallObserver: Send + Sync + fmt::Debug {
    /// One attempt of `operation` ended; `retry` when it was not the call's first attempt,
    /// `throttled` when AWS answered it with a throttling error.
    fn attempt(&self, operation: &str, retry: bool, throttled: bool);
    /// One call ended after all its attempts: `outcome` is "success" or the AWS error code
    /// of the last answer (`HTTP<status>` when it carried none; "NetworkError", "Timeout"
    /// or "ClientError", e.g. no credentials, when there was no answer).
    fn call(&self, operation: &str, outcome: &str);
}

/// The interceptor every SSM client carries when the edge has an observer.
#[derive(Debug)]
pub(crate) struct Telemetry(pub Arc<dyn CallObserver>);

impl Intercept for Telemetry {
    fn name(&self) -> &'static str {
        "patchfleet-telemetry"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempts = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        let throttled = context
            .response()
            .and_then(error_code)
            .is_some_and(|code| classify_code(Some(&code)) == ErrorKind::Throttled);
        self.0.attempt(operation(cfg), attempts > 1, throttled);
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let outcome = match context.output_or_error() {
            Some(Ok(_)) => "success".to_owned(),
            Some(Err(error)) => match context.response() {
                // An answer: AWS's error code, else its HTTP status (a proxy's page).
                Some(response) => error_code(response)
                    .unwrap_or_else(|| format!("HTTP{}", response.status().as_u16())),
                None if error.is_timeout_error() => "Timeout".to_owned(),
                None if error.is_connector_error() => "NetworkError".to_owned(),
                // Failed before sending: credentials (an AssumeRole refused), signing.
                None => "ClientError".to_owned(),
            },
            None => "ClientError".to_owned(),
        };
        self.0.call(operation(cfg), &outcome);
        Ok(())
    }
}

fn operation(cfg: &ConfigBag) -> &str {
    cfg.load::<Metadata>().map_or("unknown", Metadata::name)
}

/// The error code of an awsJson1.1 error answer: the `X-Amzn-ErrorType` header, else the
/// body's `__type`, either possibly prefixed with a namespace (`...#Code`) or followed by
/// `:` and a URL
/// (<https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html#operation-error-serialization>).
fn error_code(response: &HttpResponse) -> Option<String> {
    if response.status().is_success() {
        return None;
    }
    let raw = match response.headers().get("x-amzn-errortype") {
        Some(header) => header.to_owned(),
        None => {
            let body: serde_json::Value = serde_json::from_slice(response.body().bytes()?).ok()?;
            body.get("__type")?.as_str()?.to_owned()
        }
    };
    let code = raw.split(':').next().unwrap_or(&raw);
    let code = code.rsplit('#').next().unwrap_or(code);
    (!code.is_empty()).then(|| code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    fn answer(status: u16, header: Option<&str>, body: &str) -> HttpResponse {
        let mut response = HttpResponse::new(
            StatusCode::try_from(status).expect("valid status"),
            SdkBody::from(body.to_owned()),
        );
        if let Some(value) = header {
            response
                .headers_mut()
                .insert("X-Amzn-ErrorType", value.to_owned());
        }
        response
    }

    #[test]
    fn error_codes_come_from_the_header_or_the_body() {
        let cases = [
            (200, None, "{}", None),
            (
                400,
                None,
                r#"{"__type":"ThrottlingException","message":"slow"}"#,
                Some("ThrottlingException"),
            ),
            (
                400,
                None,
                r#"{"__type":"com.amazonaws.ssm#DoesNotExistException"}"#,
                Some("DoesNotExistException"),
            ),
            (
                400,
                Some("ThrottlingException:http://internal.amazon.com/"),
                "",
                Some("ThrottlingException"),
            ),
            (500, None, "not json", None),
        ];
        for (status, header, body, expected) in cases {
            assert_eq!(
                error_code(&answer(status, header, body)).as_deref(),
                expected,
                "{status} {header:?} {body}"
            );
        }
    }
}
