//! ecs's errors and the stable names Step Functions branches on.

use lambda_runtime::Diagnostic;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::error_names;
use stepdeploy_shared::errors::{diagnostic, ErrorName};

/// Why the ecs phase failed.
#[derive(Debug, thiserror::Error)]
pub enum EcsError {
    /// Another rule took the priority between bootstrap and now.
    #[error(
        "ALB priority {priority} was taken by another rule before the tenant's rule could use it"
    )]
    PriorityInUse {
        /// The priority.
        priority: u32,
    },
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
}

impl ErrorName for EcsError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::PriorityInUse { .. } => error_names::PRIORITY_IN_USE,
            Self::Aws(e) => e.error_name(),
        }
    }
}

impl From<EcsError> for Diagnostic {
    fn from(err: EcsError) -> Self {
        diagnostic(&err)
    }
}
