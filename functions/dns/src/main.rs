//! dns Lambda: phase 3b, the tenant's Route53 alias to CloudFront and the
//! HTTPS check behind it.
//!
//! Thin entry point: tracing, the orchestrator's AWS config and the HTTP
//! client once per cold start; each invocation is handled by [`handler::handle`].

mod handler;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_shared::init_tracing();
    let connector = handler::AwsConnector::new(stepdeploy_shared::aws::sdk_config().await);
    let prober = stepdeploy_shared::http::Prober::new(Duration::from_secs(10))?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (connector, prober) = (&connector, &prober);
        stepdeploy_shared::timing::measured("dns", async move {
            handler::handle(event.payload, connector, prober)
                .await
                .map_err(Diagnostic::from)
        })
    }))
    .await
}
