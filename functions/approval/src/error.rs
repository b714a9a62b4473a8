//! Why the gate failed, and the stable names the state machine branches on.
//! (The Function URL side answers pages instead; it never fails.)

use crate::ports::KeyError;
use std::sync::Arc;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::ConfigError;
use stepdeploy_shared::error_names;
use stepdeploy_shared::errors::{diagnostic, ErrorName};

/// Why the gate failed.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The plan's environment has no approval configured, the requester is
    /// not an address, or two gate openings raced.
    #[error("invalid input: {0}")]
    Validation(String),
    /// The environment configs could not be loaded at cold start.
    #[error("environment configuration is invalid: {0}")]
    Config(#[source] Arc<ConfigError>),
    /// A setting the gate needs is not set.
    #[error("{0} is not set: the approval links need this function's Function URL")]
    MissingSetting(&'static str),
    /// The link-signing key is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The run went on without a real quorum.
    #[error("no valid approval for this run: {0}")]
    Bypassed(String),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
}

impl ErrorName for ApprovalError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Validation(_) => error_names::VALIDATION_FAILED,
            Self::Config(_) | Self::MissingSetting(_) => error_names::CONFIG_INVALID,
            Self::Key(KeyError::TooShort(_)) => error_names::CONFIG_INVALID,
            Self::Key(KeyError::Aws(e)) => e.error_name(),
            Self::Bypassed(_) => error_names::APPROVAL_BYPASSED,
            Self::Aws(e) => e.error_name(),
        }
    }
}

impl From<ApprovalError> for lambda_runtime::Diagnostic {
    fn from(err: ApprovalError) -> Self {
        diagnostic(&err)
    }
}
