//! dns Lambda: phase 3b, the tenant's Route53 alias to CloudFront and the
//! HTTPS check behind it. Clients once per cold start; each invocation is
//! [`handler::handle`].

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
    let admission = Admission::new(Quorum::Required, Action::Deploy);
    lambda::serve_guarded("dns", &guard, admission, move |input| {
        handler::handle(input, connector, prober)
    })
    .await
}
