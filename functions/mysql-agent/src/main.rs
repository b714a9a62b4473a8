//! The MySQL agent Lambda: deployed by each environment account's stack
//! (`infra/target-account-role.yaml`) into the VPC of its RDS, invoked
//! through the deploy role by database, rollback and teardown. The caller
//! passes the MySQL credentials (see `stepdeploy_shared::mysql`); its one
//! AWS call is S3, for the database dumps (`_backups/` of the config bucket).
//!
//! Thin entry point; each invocation is handled by [`handler::handle`].

mod dump;
mod error;
mod handler;
mod ports;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_shared::init_tracing();
    let config = stepdeploy_shared::aws::sdk_config().await;
    let backups = &ports::Backups(stepdeploy_shared::aws::s3_client(&config));
    let mysql = &ports::MySql;
    stepdeploy_shared::lambda::serve("mysql-agent", move |call| {
        handler::handle(call, mysql, backups)
    })
    .await
}
