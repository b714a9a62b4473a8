//! approval Lambda: the production gate.
//!
//! Invoked by the state machine (`lambda:invoke.waitForTaskToken`) it mails
//! each approver signed approve/reject links; invoked through its Function
//! URL it shows a confirmation page (GET) and records decisions (POST),
//! resuming the run when enough distinct approvers agreed or failing it with
//! `ApprovalRejected` at the first rejection. Right after the gate the state
//! machine calls it (`confirm`) to check the quorum is real before any
//! change (`ApprovalBypassed` otherwise); after a timeout (`expire`) so late
//! links are refused.

mod handler;
mod link;
mod ports;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use std::sync::Arc;
use stepdeploy_shared::config::EnvironmentSet;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_shared::init_tracing();
    let config = stepdeploy_shared::aws::sdk_config().await;
    let gate = ports::AwsGate::new(&config, ports::Settings::from_env());
    let environments = EnvironmentSet::from_env().map_err(Arc::new);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (gate, environments) = (&gate, &environments);
        stepdeploy_shared::timing::measured("approval", async move {
            let payload = event.payload;
            if payload.get("requestContext").is_some() {
                return Ok(handler::http(&payload, gate, now()).await);
            }
            if payload["action"] == "expire" {
                let execution = payload["execution"].as_str().unwrap_or_default();
                return handler::expire(execution, gate)
                    .await
                    .map_err(Diagnostic::from);
            }
            let environments = environments.as_ref().map_err(|e| Diagnostic {
                error_type: stepdeploy_shared::error_names::CONFIG_INVALID.into(),
                error_message: format!("environment configuration is invalid: {e}"),
            })?;
            let invalid = |e: serde_json::Error, shape: &str| {
                Diagnostic::from(handler::ApprovalError::Validation(format!(
                    "expected {shape}: {e}"
                )))
            };
            if payload["action"] == "confirm" {
                let input: handler::ConfirmRequest = serde_json::from_value(payload)
                    .map_err(|e| invalid(e, "{action, plan, execution, approving}"))?;
                return handler::confirm(input, gate, environments)
                    .await
                    .map_err(Diagnostic::from);
            }
            let input: handler::GateRequest = serde_json::from_value(payload)
                .map_err(|e| invalid(e, "{action, plan, task_token, execution, approving}"))?;
            handler::request(input, gate, environments, &gate.settings().url, now())
                .await
                .map_err(Diagnostic::from)
        })
    }))
    .await
}
