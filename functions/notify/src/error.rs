//! notify's errors and the stable names Step Functions branches on.

use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::error_names;
use stepdeploy_shared::errors::{diagnostic, ErrorName};

/// Why notify failed.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A succeeded run whose state lacks what the document is made from
    /// (the payload's shape itself is checked by the entry helper).
    #[error("invalid input: {0}")]
    Validation(String),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
}

impl ErrorName for NotifyError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Validation(_) => error_names::VALIDATION_FAILED,
            Self::Aws(e) => e.error_name(),
        }
    }
}

impl From<NotifyError> for lambda_runtime::Diagnostic {
    fn from(err: NotifyError) -> Self {
        diagnostic(&err)
    }
}
