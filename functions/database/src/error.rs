//! database's errors and the stable names Step Functions branches on.

use crate::ports::SqlError;
use lambda_runtime::Diagnostic;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::error_names;
use stepdeploy_shared::errors::{diagnostic, ErrorName};

/// Why the database phase failed. No variant carries a password.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// MySQL refused a connection or a statement.
    #[error("MySQL at {endpoint}: {source}")]
    Sql {
        /// host:port.
        endpoint: String,
        /// What failed.
        #[source]
        source: SqlError,
    },
    /// The OS random source failed.
    #[error("no randomness for the password: {0}")]
    Random(getrandom::Error),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
}

impl ErrorName for DatabaseError {
    fn error_name(&self) -> &'static str {
        match self {
            // An agent that could not be invoked keeps the AWS error's name
            // (AwsThrottled, AwsAccessDenied), so Retry/Catch see it.
            Self::Sql { source, .. } => source.error_name(),
            Self::Random(_) => error_names::INTERNAL_ERROR,
            Self::Aws(e) => e.error_name(),
        }
    }
}

impl From<DatabaseError> for Diagnostic {
    fn from(err: DatabaseError) -> Self {
        diagnostic(&err)
    }
}
