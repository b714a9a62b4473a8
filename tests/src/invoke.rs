//! Calling the phase functions directly, as the state machines do, for
//! tests of one phase without a whole run.

use crate::clients::orchestrator;
use crate::events::event;

/// The answer of a Lambda invocation.
#[derive(Debug)]
pub enum Invocation {
    /// The function's result.
    Ok(serde_json::Value),
    /// A function error: `errorType` and `errorMessage`.
    Err(String, String),
}

impl Invocation {
    /// The result, or a panic naming the error.
    pub fn ok(self) -> serde_json::Value {
        match self {
            Self::Ok(v) => v,
            Self::Err(t, m) => panic!("function failed: {t}: {m}"),
        }
    }

    /// The error type, or a panic if it succeeded.
    pub fn err(self) -> (String, String) {
        match self {
            Self::Ok(v) => panic!("function succeeded: {v}"),
            Self::Err(t, m) => (t, m),
        }
    }
}

/// Invokes `stepdeploy-{function}` through the Lambda API (moto → cargo lambda watch).
pub async fn invoke(function: &str, payload: &serde_json::Value) -> Invocation {
    let lambda = aws_sdk_lambda::Client::new(&orchestrator().await);
    let out = lambda
        .invoke()
        .function_name(format!("stepdeploy-{function}"))
        .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
        .send()
        .await
        .expect("lambda:Invoke answered");
    let body: serde_json::Value = out
        .payload()
        .map(|b| serde_json::from_slice(b.as_ref()).expect("JSON payload"))
        .unwrap_or(serde_json::Value::Null);
    if out.function_error().is_some() {
        Invocation::Err(
            body["errorType"].as_str().unwrap_or_default().to_string(),
            body["errorMessage"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    } else {
        Invocation::Ok(body)
    }
}

/// A bootstrap input (what the state machine passes) for a deployment request.
pub fn bootstrap_input(
    tenant: &str,
    env: &str,
    execution: &str,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut detail = serde_json::json!({"tenant": tenant, "environment": env, "requested_by": "jane@kimmyai.io"});
    if let (Some(d), Some(e)) = (detail.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    serde_json::json!({
        "event": event("Tenant Deployment Requested", detail),
        "execution": format!("arn:aws:states:eu-west-1:123456789012:execution:stepdeploy-deploy-tenant:{execution}"),
        "started_at": "2026-11-22T10:00:01Z"
    })
}

/// bootstrap, then ecs and database, as the state machine runs them: the plan and both outputs.
pub async fn deploy_through_database(
    tenant: &str,
    env: &str,
) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
    let plan = invoke(
        "bootstrap",
        &bootstrap_input(
            tenant,
            env,
            &format!("{tenant}-{env}-1"),
            serde_json::json!({}),
        ),
    )
    .await
    .ok();
    // database first: the service's tasks read the secret it creates.
    let database = invoke("database", &serde_json::json!({ "plan": plan }))
        .await
        .ok();
    let ecs = invoke(
        "ecs",
        &serde_json::json!({ "plan": plan, "database": database }),
    )
    .await
    .ok();
    (plan, ecs, database)
}
