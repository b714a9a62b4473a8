//! database Lambda: phase 1 of a deployment, before ecs (tenant secret,
//! MySQL database and user, the latter through the environment's MySQL
//! agent). Clients once per cold start; each invocation is [`handler::handle`].

mod credentials;
mod error;
mod handler;
mod ports;
mod steps;

use stepdeploy_shared::approvals::Action;
use stepdeploy_shared::guard::{Guard, Quorum};
use stepdeploy_shared::lambda::{self, Admission};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = stepdeploy_shared::aws::sdk_config().await;
    let guard = Guard::from_env(&config);
    let connector = &ports::connector(config);
    let admission = Admission::new(Quorum::Required, Action::Deploy);
    lambda::serve_guarded("database", &guard, admission, move |input| {
        handler::handle(input, connector)
    })
    .await
}
