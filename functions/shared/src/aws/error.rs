//! One error type for a failed AWS call: which operation, how it classifies
//! (from the error code or the HTTP status, never the message), and the SDK
//! error itself as the source, so nothing is flattened into a string before
//! it is logged.

use crate::errors::AwsFailureKind;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// A failed AWS API call.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {detail}")]
pub struct AwsCallError {
    /// The API operation, e.g. `elbv2:DescribeRules`.
    pub operation: &'static str,
    /// Throttled, unavailable (5xx, no answer), access denied or other.
    pub kind: AwsFailureKind,
    /// AWS's error code, when the service answered.
    pub code: Option<String>,
    /// `true` when no answer came back (connection refused, DNS, timeout):
    /// the endpoint is down or unreachable rather than refusing the call.
    pub unreachable: bool,
    /// The error with its whole source chain, rendered once for the message.
    detail: String,
    #[source]
    source: BoxError,
}

impl AwsCallError {
    /// Wraps an SDK error from `operation`.
    pub fn new<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let code = err.code().map(str::to_string);
        let status = err
            .raw_response()
            .and_then(|raw| (raw as &dyn std::any::Any).downcast_ref::<HttpResponse>())
            .map(|response| response.status().as_u16());
        let kind = match &err {
            // No answer: the call may be retried like a 5xx.
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => AwsFailureKind::Unavailable,
            _ => match AwsFailureKind::from_code(code.as_deref()) {
                AwsFailureKind::Other if status.is_some_and(|s| s >= 500) => {
                    AwsFailureKind::Unavailable
                }
                // A refused HEAD (S3 HeadObject/HeadBucket) has no body, so no code.
                AwsFailureKind::Other if code.is_none() && status == Some(403) => {
                    AwsFailureKind::AccessDenied
                }
                kind => kind,
            },
        };
        let unreachable = matches!(
            &err,
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)
        );
        let detail = DisplayErrorContext(&err).to_string();
        Self {
            operation,
            kind,
            code,
            unreachable,
            detail,
            source: Box::new(err),
        }
    }

    /// Wraps an error that carries no AWS error code (e.g. a waiter that gave up).
    pub fn other<E>(operation: &'static str, err: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let detail = DisplayErrorContext(&err).to_string();
        Self {
            operation,
            kind: AwsFailureKind::Other,
            code: None,
            unreachable: false,
            detail,
            source: Box::new(err),
        }
    }

    /// The `error_type` to report.
    pub fn error_name(&self) -> &'static str {
        self.kind.error_name()
    }

    /// Whether trying again later may succeed (throttled, 5xx, no answer);
    /// for a call that changes something, the change may have been applied.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            AwsFailureKind::Throttled | AwsFailureKind::Unavailable
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_sdk_dynamodb::types::error::ResourceNotFoundException;
    use aws_smithy_types::error::ErrorMetadata;

    #[test]
    fn classifies_and_keeps_source() {
        let throttled: SdkError<GetItemError, ()> = SdkError::service_error(
            GetItemError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            ),
            (),
        );
        let e = AwsCallError::new("dynamodb:GetItem", throttled);
        assert_eq!(e.error_name(), "AwsThrottled");
        assert_eq!(e.code.as_deref(), Some("ThrottlingException"));
        assert!(
            e.to_string().starts_with("dynamodb:GetItem failed: "),
            "{e}"
        );
        assert!(std::error::Error::source(&e).is_some());

        let missing: SdkError<GetItemError, ()> = SdkError::service_error(
            GetItemError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("no table")
                    .build(),
            ),
            (),
        );
        let e = AwsCallError::new("dynamodb:GetItem", missing);
        assert_eq!(e.error_name(), "AwsServiceError");
        assert!(!e.is_transient());
    }

    #[test]
    fn server_errors_and_no_answer_are_unavailable_and_transient() {
        use aws_smithy_runtime_api::http::StatusCode;
        use aws_smithy_types::body::SdkBody;
        // A 502 whose code the SDK does not know: the status decides.
        let raw = HttpResponse::new(StatusCode::try_from(502).expect("status"), SdkBody::empty());
        let bad_gateway: SdkError<GetItemError, HttpResponse> = SdkError::service_error(
            GetItemError::generic(ErrorMetadata::builder().code("Weird").build()),
            raw,
        );
        let e = AwsCallError::new("dynamodb:GetItem", bad_gateway);
        assert_eq!(e.error_name(), "AwsUnavailable");
        assert!(e.is_transient());
        let timeout: SdkError<GetItemError, HttpResponse> =
            SdkError::timeout_error(std::io::Error::other("timed out"));
        let e = AwsCallError::new("dynamodb:GetItem", timeout);
        assert_eq!(e.error_name(), "AwsUnavailable");
        assert!(e.unreachable && e.is_transient());
        let denied: SdkError<GetItemError, ()> = SdkError::service_error(
            GetItemError::generic(
                ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .build(),
            ),
            (),
        );
        assert!(!AwsCallError::new("dynamodb:GetItem", denied).is_transient());
    }
}
