//! dns Lambda: phase 3b, the tenant's Route53 alias to CloudFront and the
//! HTTPS check behind it.
//!
//! Thin entry point: tracing, the orchestrator's AWS config and the HTTP
//! client once per cold start; each invocation is handled by [`handler::handle`].

mod handler;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use std::time::Duration;
use stepdeploy_shared::approvals::Action;
use stepdeploy_shared::guard::{Guard, Quorum};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_shared::init_tracing();
    let config = stepdeploy_shared::aws::sdk_config().await;
    let guard = Guard::from_env(&config);
    let connector = handler::AwsConnector::new(config);
    let prober = stepdeploy_shared::http::Prober::new(Duration::from_secs(10))?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (connector, prober, guard) = (&connector, &prober, &guard);
        stepdeploy_shared::timing::measured("dns", async move {
            let payload = guard
                .admit(event.payload, Quorum::Required, Action::Deploy)
                .await
                .map_err(Diagnostic::from)?;
            handler::handle(payload, connector, prober)
                .await
                .map_err(Diagnostic::from)
        })
    }))
    .await
}
