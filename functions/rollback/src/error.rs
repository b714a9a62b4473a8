//! Why rollback could not finish, and the operator's way out.

use crate::LeftBehind;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::error_names;
use stepdeploy_shared::errors::{diagnostic, ErrorName};

/// The operator's command that finishes a rollback left incomplete.
pub fn cleanup_command(execution: &str) -> String {
    let name = execution.rsplit(':').next().unwrap_or(execution);
    format!("stepdeploy cleanup {name}")
}

/// One line per resource left, and what to do.
fn incomplete_message(execution: &str, removed: &[String], left: &[LeftBehind]) -> String {
    let left_text: Vec<String> = left
        .iter()
        .map(|l| {
            let error: String = l.error.split_whitespace().collect::<Vec<_>>().join(" ");
            let error: String = error.chars().take(240).collect();
            format!("{} ({error})", l.resource)
        })
        .collect();
    format!(
        "rollback could not finish; remove the obstacle, then run `{}` (the tenant stays locked until then). {} left: {}. Undone: {}.",
        cleanup_command(execution),
        left.len(),
        left_text.join("; "),
        if removed.is_empty() {
            "nothing".to_string()
        } else {
            removed.join(", ")
        },
    )
}

/// Why rollback could not finish.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// The payload is not `{state}`.
    #[error("invalid input: {0}")]
    Validation(String),
    /// Some entries could not be undone (the state machine retries the whole
    /// rollback; what is left stays in the ledger for `stepdeploy cleanup`).
    #[error("{}", incomplete_message(execution, removed, left))]
    Incomplete {
        /// The run.
        execution: String,
        /// What was undone.
        removed: Vec<String>,
        /// What is left, and why.
        left: Vec<LeftBehind>,
    },
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
}

impl ErrorName for RollbackError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Validation(_) => error_names::VALIDATION_FAILED,
            Self::Incomplete { .. } => error_names::ROLLBACK_FAILED,
            Self::Aws(e) => e.error_name(),
        }
    }
}

impl From<RollbackError> for lambda_runtime::Diagnostic {
    fn from(err: RollbackError) -> Self {
        diagnostic(&err)
    }
}
