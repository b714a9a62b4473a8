//! trigger's errors and the stable names Step Functions and EventBridge's
//! retry see.

use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::error_names;
use stepdeploy_shared::errors::{diagnostic, ErrorName};

/// Why no execution was started.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The event is not one stepdeploy starts anything for.
    #[error("{0}")]
    Unroutable(String),
    /// The function is deployed without the state machine it should start.
    #[error("{0} is not set: the trigger does not know which state machine to start")]
    NotConfigured(&'static str),
    /// The request id names a run started by a request with another detail.
    #[error("{0}")]
    Conflict(String),
    /// StartExecution failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
}

impl ErrorName for TriggerError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Unroutable(_) => error_names::VALIDATION_FAILED,
            Self::NotConfigured(_) => error_names::CONFIG_INVALID,
            Self::Conflict(_) => error_names::VALIDATION_FAILED,
            Self::Aws(e) => e.error_name(),
        }
    }
}

impl From<TriggerError> for lambda_runtime::Diagnostic {
    fn from(err: TriggerError) -> Self {
        diagnostic(&err)
    }
}
