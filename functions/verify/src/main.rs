//! verify Lambda: phase 3a, one round of post-deployment checks per
//! invocation (the state machine waits between rounds; this never sleeps).
//! Clients once per cold start; each invocation is [`handler::handle`].

mod checks;
mod error;
mod handler;
mod ports;

use std::time::Duration;
use stepdeploy_shared::approvals::Action;
use stepdeploy_shared::guard::{Guard, Quorum};
use stepdeploy_shared::lambda::{self, Admission};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = stepdeploy_shared::aws::sdk_config().await;
    let guard = Guard::from_env(&config);
    let connector = &ports::connector(config);
    let prober = &stepdeploy_shared::http::Prober::new(Duration::from_secs(10))?;
    let admission = Admission::new(Quorum::NotRequired, Action::Deploy);
    lambda::serve_guarded("verify", &guard, admission, move |input| {
        handler::handle(input, connector, prober)
    })
    .await
}
