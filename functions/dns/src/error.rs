//! dns's errors and the stable names Step Functions branches on.

use lambda_runtime::Diagnostic;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::error_names;
use stepdeploy_shared::errors::{diagnostic, ErrorName};

/// Why dns failed.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The site did not answer as expected.
    #[error("GET {url} (Host: {host}): {what}")]
    Check {
        /// The URL checked.
        url: String,
        /// The Host header sent.
        host: String,
        /// What was seen.
        what: String,
    },
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
}

impl ErrorName for DnsError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Check { .. } => error_names::DNS_CHECK_FAILED,
            Self::Aws(e) => e.error_name(),
        }
    }
}

impl From<DnsError> for Diagnostic {
    fn from(err: DnsError) -> Self {
        diagnostic(&err)
    }
}
