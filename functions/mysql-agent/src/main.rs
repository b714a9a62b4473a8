//! The MySQL agent Lambda: deployed by each environment account's stack
//! (`infra/target-account-role.yaml`) into the VPC of its RDS, invoked
//! through the deploy role by database, rollback and teardown. It makes no
//! AWS call: the caller passes the credentials (see
//! `stepdeploy_shared::mysql`).
//!
//! Thin entry point: tracing once per cold start; each invocation is handled
//! by [`handler::handle`].

mod handler;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_shared::init_tracing();
    let mysql = handler::MySql;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let mysql = &mysql;
        stepdeploy_shared::timing::measured("mysql-agent", async move {
            handler::handle(event.payload, mysql)
                .await
                .map_err(Diagnostic::from)
        })
    }))
    .await
}
