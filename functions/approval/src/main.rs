//! approval Lambda: the production gate.
//!
//! Invoked by the state machine (`lambda:invoke.waitForTaskToken`) it mails
//! each approver signed approve/reject links; invoked through its Function
//! URL it shows a confirmation page (GET) and records decisions (POST),
//! resuming the run when enough distinct approvers agreed or failing it with
//! `ApprovalRejected` at the first rejection. Right after the gate the state
//! machine calls it (`confirm`) to check the quorum is real before any
//! change (`ApprovalBypassed` otherwise); after a timeout (`expire`) so late
//! links are refused. [`handler::ApprovalEvent`] tells the payloads apart.

mod error;
mod handler;
mod link;
mod page;
mod ports;
mod steps;

use std::sync::Arc;
use stepdeploy_shared::{config::EnvironmentSet, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = stepdeploy_shared::aws::sdk_config().await;
    let settings = ports::Settings::from_env();
    let ports = &ports::AwsPorts::new(&config, &settings);
    let environments = &EnvironmentSet::from_env().map_err(Arc::new);
    let links_url = settings.url.as_deref();
    lambda::serve("approval", move |event| {
        handler::handle(event, ports, environments, links_url, handler::now())
    })
    .await
}
