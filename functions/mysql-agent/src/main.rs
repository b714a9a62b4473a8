//! The MySQL agent Lambda: deployed by each environment account's stack
//! (`infra/target-account-role.yaml`) into the VPC of its RDS, invoked
//! through the deploy role by database, rollback and teardown. It makes no
//! AWS call: the caller passes the credentials (see
//! `stepdeploy_shared::mysql`).
//!
//! Thin entry point; each invocation is handled by [`handler::handle`].

mod error;
mod handler;
mod ports;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let mysql = &ports::MySql;
    stepdeploy_shared::lambda::serve("mysql-agent", move |call| handler::handle(call, mysql)).await
}
