//! The one Lambda entry every stepdeploy function uses: tracing, the payload
//! read as the handler's typed input (a malformed one is `ValidationFailed`
//! naming the field), the guard where the phase needs one, timing, and the
//! handler's error turned into a `Diagnostic` with its stable name.
//!
//! A `main` then only builds its clients once per cold start and hands
//! [`serve`] (or [`serve_guarded`]) a closure over them, as in the Lambda
//! runtime's `basic-sdk` example.

use crate::approvals::Action;
use crate::errors::{diagnostic, ErrorName};
use crate::guard::{Guard, Quorum};
use crate::validate::typed;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Display;
use std::future::Future;

/// What the guard checks before the handler runs.
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    /// Whether a change in an approval environment needs the quorum.
    pub quorum: Quorum,
    /// What the run does to the tenant.
    pub action: Action,
    /// Where the plan is in the payload (a JSON pointer).
    pub plan_at: &'static str,
}

impl Admission {
    /// The plan at `/plan`, the usual place.
    pub const fn new(quorum: Quorum, action: Action) -> Self {
        Self {
            quorum,
            action,
            plan_at: "/plan",
        }
    }

    /// The plan elsewhere (notify reads it at `/state/plan/output`).
    pub const fn at(self, plan_at: &'static str) -> Self {
        Self { plan_at, ..self }
    }
}

/// Reads a payload as `I`; a mismatch is `ValidationFailed` naming the field.
pub fn input<I: DeserializeOwned>(payload: serde_json::Value) -> Result<I, Diagnostic> {
    typed(payload, "", "input").map_err(|e| Diagnostic {
        error_type: crate::error_names::VALIDATION_FAILED.to_string(),
        error_message: format!("invalid input: {e}"),
    })
}

/// Serves `handler` until the runtime stops: each payload read as `I`.
pub async fn serve<I, O, E, F, Fut>(
    phase: &'static str,
    handler: F,
) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned,
    O: Serialize,
    E: ErrorName + Display,
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<O, E>>,
{
    crate::init_tracing();
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        crate::timing::measured(phase, async move {
            let input = input(event.payload)?;
            handler(input).await.map_err(|e| diagnostic(&e))
        })
    }))
    .await
}

/// [`serve`] with the payload admitted by `guard` first (see [`crate::guard`]).
pub async fn serve_guarded<I, O, E, F, Fut>(
    phase: &'static str,
    guard: &Guard,
    admission: Admission,
    handler: F,
) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned,
    O: Serialize,
    E: ErrorName + Display,
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<O, E>>,
{
    serve_admitting(phase, guard, move |_| admission, handler).await
}

/// [`serve_guarded`] for a function whose steps need different admissions
/// (teardown: removing needs the quorum, unlocking after a failure does not):
/// `admission` picks one from the raw payload.
pub async fn serve_admitting<I, O, E, A, F, Fut>(
    phase: &'static str,
    guard: &Guard,
    admission: A,
    handler: F,
) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned,
    O: Serialize,
    E: ErrorName + Display,
    A: Fn(&serde_json::Value) -> Admission,
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<O, E>>,
{
    crate::init_tracing();
    let (handler, admission) = (&handler, &admission);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        crate::timing::measured(phase, async move {
            let Admission {
                quorum,
                action,
                plan_at,
            } = admission(&event.payload);
            let payload = guard
                .admit_at(event.payload, plan_at, quorum, action)
                .await
                .map_err(Diagnostic::from)?;
            let input = input(payload)?;
            handler(input).await.map_err(|e| diagnostic(&e))
        })
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Input {
        plan: Inner,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        tenant: String,
    }

    #[test]
    fn a_malformed_payload_names_the_field() {
        let err = input::<Input>(serde_json::json!({"plan": {"tenant": 7}})).unwrap_err();
        assert_eq!(err.error_type, "ValidationFailed");
        assert!(
            err.error_message.contains("plan.tenant"),
            "{}",
            err.error_message
        );
        let err = input::<Input>(serde_json::json!({"plan": {}})).unwrap_err();
        assert!(
            err.error_message.contains("plan.tenant"),
            "{}",
            err.error_message
        );
        let err = input::<Input>(serde_json::json!([])).unwrap_err();
        assert!(err.error_message.contains("input"), "{}", err.error_message);
    }
}
