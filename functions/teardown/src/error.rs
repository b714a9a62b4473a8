//! Why a teardown step failed, with the stable names the state machine matches.

use std::sync::Arc;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::ConfigError;
use stepdeploy_shared::error_names;
use stepdeploy_shared::errors::{diagnostic, ErrorName};
use stepdeploy_shared::validate::FieldError;

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    /// Bad event or payload.
    #[error("invalid request: {0}")]
    Validation(#[from] FieldError),
    /// Environment configs could not be loaded.
    #[error("environment configuration is invalid: {0}")]
    Config(#[source] Arc<ConfigError>),
    /// Another run holds the tenant.
    #[error(
        "{tenant} in {environment} is being changed by {owner}; try again when it has finished"
    )]
    Locked {
        /// Tenant.
        tenant: String,
        /// Environment.
        environment: String,
        /// Lock holder.
        owner: String,
    },
    /// Nothing of the tenant exists in the environment.
    #[error("{tenant} has no trace in {environment} (no registry entry, no resource by its names); nothing was removed. Tenants in {environment}: {}", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    NotFound {
        /// Tenant asked for.
        tenant: String,
        /// Environment.
        environment: String,
        /// Tenants that do exist there.
        known: Vec<String>,
    },
    /// A resource could not be removed.
    #[error("could not remove {what}: {reason}")]
    Remove {
        /// `kind id`.
        what: String,
        /// Why.
        reason: String,
    },
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
}

impl ErrorName for TeardownError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Validation(_) => error_names::VALIDATION_FAILED,
            Self::Config(_) => error_names::CONFIG_INVALID,
            Self::Locked { .. } => error_names::DEPLOYMENT_LOCKED,
            Self::NotFound { .. } => error_names::TENANT_NOT_FOUND,
            Self::Remove { .. } => error_names::ROLLBACK_FAILED,
            Self::Aws(e) => e.error_name(),
        }
    }
}

impl From<TeardownError> for lambda_runtime::Diagnostic {
    fn from(err: TeardownError) -> Self {
        diagnostic(&err)
    }
}
