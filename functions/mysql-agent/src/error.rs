//! The agent's errors and the stable names its callers branch on.

use lambda_runtime::Diagnostic;
use stepdeploy_shared::error_names;
use stepdeploy_shared::errors::{diagnostic, ErrorName};

/// Why a request failed. No variant carries a password or a statement with one.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A name is not `[a-z0-9_]`, or the password not `[A-Za-z0-9]` (a
    /// payload that is no `MySqlCall` is refused by the entry helper).
    #[error("invalid request: {0}")]
    Validation(String),
    /// MySQL refused a connection or a statement.
    #[error("MySQL at {endpoint}: {operation}: {source}")]
    Sql {
        /// host:port.
        endpoint: String,
        /// What was being done (`CREATE USER acme_user`).
        operation: String,
        /// The driver's error.
        #[source]
        source: mysql_async::Error,
    },
    /// The dump could not be written to or read from S3.
    #[error(transparent)]
    Storage(#[from] stepdeploy_shared::aws_error::AwsCallError),
}

impl ErrorName for AgentError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Validation(_) => error_names::VALIDATION_FAILED,
            Self::Sql { .. } => error_names::DATABASE_ERROR,
            Self::Storage(e) => e.error_name(),
        }
    }
}

impl From<AgentError> for Diagnostic {
    fn from(err: AgentError) -> Self {
        diagnostic(&err)
    }
}
