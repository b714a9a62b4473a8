//! rollout's errors and the stable names the state machine branches on.

use std::sync::Arc;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::ConfigError;
use stepdeploy_shared::error_names;
use stepdeploy_shared::errors::{diagnostic, ErrorName};
use stepdeploy_shared::validate::FieldError;

/// Why a rollout step failed.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// The environment configs could not be loaded.
    #[error("environment configuration is invalid: {0}")]
    Config(#[source] Arc<ConfigError>),
    /// The request (or a step's payload) is invalid; nothing was started.
    #[error("invalid input: {0}")]
    Validation(#[from] FieldError),
    /// A setting the function needs is missing.
    #[error("{0} is not set")]
    MissingSetting(&'static str),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
}

impl ErrorName for RolloutError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Config(_) | Self::MissingSetting(_) => error_names::CONFIG_INVALID,
            Self::Validation(_) => error_names::VALIDATION_FAILED,
            Self::Aws(e) => e.error_name(),
        }
    }
}

impl From<RolloutError> for lambda_runtime::Diagnostic {
    fn from(err: RolloutError) -> Self {
        diagnostic(&err)
    }
}
