//! The approval function's one entry: every payload it is invoked with,
//! typed ([`ApprovalEvent`]), routed to its step, and what each answers
//! ([`Reply`]).

use crate::error::ApprovalError;
use crate::page::Page;
use crate::ports::{LinkKey, Mailer, Ports, TaskCallback, Votes};
use crate::steps::{confirm, expire, request, url};
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use stepdeploy_shared::approvals::Action;
use stepdeploy_shared::config::{ConfigError, EnvironmentSet};
use stepdeploy_shared::contract::ApprovalOutcome;
use stepdeploy_shared::DeploymentPlan;

/// Everything the function is invoked with. Untagged: serde takes the first
/// variant that fits, and each fits only its own payloads: a Function URL
/// request has a `requestContext` and no `action`; the state machine's
/// payloads have no `requestContext`, and each `action` is a type that reads
/// only its own value.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "expected a Function URL request or, from the state machine, {action: request, plan, task_token, execution, approving}, {action: confirm, plan, execution, approving} or {action: expire, execution}"
)]
pub enum ApprovalEvent {
    /// An approver's link through the Function URL (GET or POST).
    Url(Box<LambdaFunctionUrlRequest>),
    /// The gate timed out: close its request so late links are refused.
    Expire {
        /// Always `expire`.
        #[expect(dead_code, reason = "its type tells the payloads apart")]
        action: ExpireAction,
        /// `$$.Execution.Id`.
        execution: String,
    },
    /// Right after the gate: is the quorum real?
    Confirm(ConfirmRequest),
    /// The gate opens.
    Request(GateRequest),
}

/// `action: request`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestAction {
    /// The only value.
    Request,
}

/// `action: confirm`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfirmAction {
    /// The only value.
    Confirm,
}

/// `action: expire`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpireAction {
    /// The only value.
    Expire,
}

/// The state machine's request (`lambda:invoke.waitForTaskToken`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateRequest {
    /// Always `request`.
    #[expect(dead_code, reason = "its type tells the payloads apart")]
    pub action: RequestAction,
    /// bootstrap's plan (a deploy or a teardown).
    #[serde(default)]
    pub plan: Option<DeploymentPlan>,
    /// The rollout's plan (`approving: rollout`).
    #[serde(default)]
    pub rollout: Option<RolloutGate>,
    /// `$$.Task.Token` (hashed before storing; never put in a link).
    pub task_token: String,
    /// `$$.Execution.Id`.
    pub execution: String,
    /// What is approved (the teardown state machine says `teardown`).
    #[serde(default)]
    pub approving: Action,
}

/// `confirm`: the step right after the gate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// Always `confirm`.
    #[expect(dead_code, reason = "its type tells the payloads apart")]
    pub action: ConfirmAction,
    /// bootstrap's (or teardown's) plan.
    #[serde(default)]
    pub plan: Option<DeploymentPlan>,
    /// The rollout's plan (`approving: rollout`).
    #[serde(default)]
    pub rollout: Option<RolloutGate>,
    /// `$$.Execution.Id`.
    pub execution: String,
    /// Deploy, teardown or rollout.
    #[serde(default)]
    pub approving: Action,
}

/// What a fleet rollout asks the quorum to approve: one image for these
/// tenants of one environment, in these waves (the rollout function's plan).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutGate {
    /// The environment (its allow-list and quorum come from this function's configs).
    pub environment: String,
    /// The image every child deploys.
    pub image: String,
    /// Who asked (may not approve).
    pub requested_by: String,
    /// The waves, in order, each its tenants.
    pub waves: Vec<Vec<String>>,
}

/// What a gate is asked about, from a deploy/teardown plan or a rollout.
#[derive(Debug, Clone)]
pub struct Question {
    /// Deploy, teardown or rollout.
    pub action: Action,
    /// The tenant, or for a rollout `N tenants`.
    pub tenant: String,
    /// Environment.
    pub environment: String,
    /// Image.
    pub image: String,
    /// Who asked, as sent.
    pub requested_by: String,
    /// A rollout's waves (empty otherwise).
    pub waves: Vec<Vec<String>>,
    /// What runs now and what changes, one line each (see [`evidence`]).
    pub evidence: Vec<String>,
    /// A rollback (a deployment of a recorded release): said in the subject.
    pub rollback: bool,
    /// The environment's approval settings, from this function's configs.
    pub approval: stepdeploy_shared::config::ApprovalConfig,
}

impl Question {
    /// The question a `request` or `confirm` payload asks: a rollout's
    /// gate reads `rollout`, every other gate its `plan` (re-resolved).
    pub fn of(
        approving: Action,
        plan: Option<DeploymentPlan>,
        rollout: Option<RolloutGate>,
        environments: &EnvironmentSet,
    ) -> Result<Self, ApprovalError> {
        let missing = |what: &str| ApprovalError::Validation(format!("invalid input: {what}"));
        if approving == Action::Rollout {
            let gate =
                rollout.ok_or_else(|| missing("rollout: is missing (approving: rollout)"))?;
            if plan.is_some() {
                return Err(missing("plan: a rollout's gate takes no plan"));
            }
            let env = environments
                .get(&gate.environment)
                .map_err(|e| ApprovalError::Validation(format!("rollout.environment: {e}")))?;
            let approval = env.approval.clone().ok_or_else(|| {
                ApprovalError::Validation(format!(
                    "{} has no approval configured",
                    gate.environment
                ))
            })?;
            let count: usize = gate.waves.iter().map(Vec::len).sum();
            if count == 0 {
                return Err(missing("rollout.waves: lists no tenant"));
            }
            return Ok(Self {
                action: approving,
                tenant: format!("{count} tenant{}", if count == 1 { "" } else { "s" }),
                environment: gate.environment,
                image: gate.image,
                requested_by: gate.requested_by,
                waves: gate.waves,
                evidence: Vec::new(),
                rollback: false,
                approval,
            });
        }
        let mut plan = plan.ok_or_else(|| missing("plan: is missing"))?;
        if rollout.is_some() {
            return Err(missing(
                "rollout: only a rollout's gate (approving: rollout) takes one",
            ));
        }
        let approval = crate::steps::approval_of(&mut plan, environments)?;
        let evidence = if approving == Action::Deploy {
            evidence(&plan)
        } else {
            Vec::new()
        };
        Ok(Self {
            action: approving,
            tenant: plan.tenant.to_string(),
            environment: plan.environment.to_string(),
            image: plan.image.to_string(),
            requested_by: plan.requested_by,
            waves: Vec::new(),
            evidence,
            rollback: plan.restore.is_some(),
            approval,
        })
    }

    /// Every tenant of a rollout's waves.
    pub fn tenants(&self) -> Vec<String> {
        self.waves.iter().flatten().cloned().collect()
    }
}

/// What a deployment's approver should know, from its plan: what the
/// environment runs now and since when, the image change (old → new), a
/// rollback's releases, and what happens to the database.
pub fn evidence(plan: &DeploymentPlan) -> Vec<String> {
    let mut lines = Vec::new();
    let new = plan.image.as_str();
    match &plan.current {
        Some(now) => {
            let release = now
                .release
                .map(|n| format!(" (release {n})"))
                .unwrap_or_default();
            lines.push(format!(
                "Now running: {}{release} since {}",
                now.image, now.since
            ));
            if now.image == new {
                lines.push(format!("Image: unchanged ({new})"));
            } else {
                lines.push(format!("Image change: {} -> {new}", now.image));
            }
        }
        None => lines.push(format!(
            "Now running: nothing (a new tenant in {}); image {new}",
            plan.environment
        )),
    }
    if let Some(restore) = &plan.restore {
        let from = plan.current.as_ref().and_then(|c| c.release).map_or_else(
            || "the current release".to_string(),
            |n| format!("release {n}"),
        );
        lines.push(format!(
            "ROLLBACK: from {from} back to release {} (live since {})",
            restore.release, restore.released_at
        ));
        if let Some(dump) = &restore.database_dump {
            lines.push(format!(
                "Database: RESTORED from {dump} (its data as release {} left it; what it holds now is dumped first)",
                restore.release
            ));
        }
    }
    if let Some(reason) = &plan.window_override {
        lines.push(format!(
            "OUTSIDE THE DEPLOYMENT WINDOW: the requester overrides it ({reason}); approving approves the override"
        ));
    }
    if let Some(backup) = &plan.backup {
        lines.push(format!(
            "Database: dumped to {backup} before the image changes"
        ));
    }
    lines
}

/// What the function answers, per [`ApprovalEvent`].
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// The page the Function URL shows.
    Page(Page),
    /// `request`: the gate is open (Step Functions ignores this answer: the
    /// task waits for its token).
    Opened(GateOpened),
    /// `confirm`: the quorum, for `$.approval`.
    Confirmed(ApprovalOutcome),
    /// `expire`.
    Expired(Expired),
}

/// The gate opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateOpened {
    /// Approvers mailed links (everyone on the list but the requester).
    pub requested: usize,
    /// Distinct approvals needed.
    pub required: u32,
    /// When the links die (epoch seconds).
    pub expires_at: u64,
    /// This gate attempt.
    pub attempt: String,
}

/// Whether `expire` closed a pending request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expired {
    /// `false` if there was none, or it had settled.
    pub expired: bool,
}

/// Epoch seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Routes `event` to its step. The environment configs are needed (and a
/// failure to load them reported) only where a plan is checked; the links'
/// base URL only where links are made.
pub async fn handle<V: Votes, M: Mailer, K: LinkKey, T: TaskCallback>(
    event: ApprovalEvent,
    ports: &Ports<V, M, K, T>,
    environments: &Result<EnvironmentSet, Arc<ConfigError>>,
    links_url: Option<&str>,
    now: u64,
) -> Result<Reply, ApprovalError> {
    let configured = || {
        environments
            .as_ref()
            .map_err(|e| ApprovalError::Config(Arc::clone(e)))
    };
    Ok(match event {
        ApprovalEvent::Url(event) => {
            Reply::Page(url::http(&event, &ports.votes, &ports.keys, &ports.runs, now).await)
        }
        ApprovalEvent::Expire { execution, .. } => {
            Reply::Expired(expire::expire(&execution, &ports.votes).await?)
        }
        ApprovalEvent::Confirm(input) => {
            Reply::Confirmed(confirm::confirm(input, &ports.votes, configured()?).await?)
        }
        ApprovalEvent::Request(input) => {
            let environments = configured()?;
            let opened = request::request(input, ports, environments, links_url, now).await?;
            Reply::Opened(opened)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::{query, Decision, Link};
    use crate::ports::fake::{pending, FakeGate, KEY};
    use serde_json::json;
    use stepdeploy_shared::approvals::{status, Vote};
    use stepdeploy_shared::error_names;
    use stepdeploy_shared::errors::ErrorName;
    use stepdeploy_shared::EnvironmentName;

    fn event(payload: serde_json::Value) -> ApprovalEvent {
        stepdeploy_shared::lambda::input(payload).expect("a payload the function is sent")
    }

    fn environments() -> Result<EnvironmentSet, Arc<ConfigError>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/environments");
        Ok(EnvironmentSet::load_dir(&dir).expect("checked-in environment configs load"))
    }

    /// bootstrap's plan for `goldencrust` in `prod` (two of lead, ops, cto).
    fn plan() -> serde_json::Value {
        let mut plan = stepdeploy_shared::plan::sample("wordpress:6.4-apache", 100);
        plan.environment = EnvironmentName::parse("prod").unwrap();
        plan.requested_by = "jane@kimmyai.io".into();
        serde_json::to_value(plan).unwrap()
    }

    fn ports(gate: &FakeGate) -> Ports<FakeGate, FakeGate, FakeGate, FakeGate> {
        Ports {
            votes: gate.clone(),
            mailer: gate.clone(),
            keys: gate.clone(),
            runs: gate.clone(),
        }
    }

    /// A Function URL request as AWS documents it (IAM auth; ours is NONE,
    /// without `authorizer`), and as `cargo lambda watch` sends it locally
    /// (an API Gateway v2 event: a form POST is base64).
    fn url_event(method: &str, query: &str, form: Option<&str>) -> serde_json::Value {
        json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/",
            "rawQueryString": query,
            "headers": {"content-type": "application/x-www-form-urlencoded", "user-agent": "curl/8"},
            "queryStringParameters": {"e": "x"},
            "requestContext": {
                "accountId": "anonymous",
                "apiId": "abc123",
                "authorizer": {"iam": {"accessKey": "AKIA", "accountId": "111122223333", "callerId": "AIDA", "cognitoIdentity": null, "principalOrgId": null, "userArn": "arn:aws:iam::111122223333:user/x", "userId": "AIDA"}},
                "domainName": "abc123.lambda-url.eu-west-1.on.aws",
                "domainPrefix": "abc123",
                "http": {"method": method, "path": "/", "protocol": "HTTP/1.1", "sourceIp": "198.51.100.1", "userAgent": "curl/8"},
                "requestId": "r-1",
                "routeKey": "$default",
                "stage": "$default",
                "time": "12/Mar/2026:19:03:58 +0000",
                "timeEpoch": 1_773_342_238_390_i64
            },
            "body": form.map(|f| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, f)),
            "pathParameters": null,
            "isBase64Encoded": form.is_some(),
            "stageVariables": null
        })
    }

    #[test]
    fn a_function_url_request_is_a_url_event() {
        assert!(matches!(
            event(url_event("GET", "e=x", None)),
            ApprovalEvent::Url(_)
        ));
        // cargo lambda watch's shape: nulls and no `authorizer`.
        let local = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "e=x",
            "headers": {"host": "127.0.0.1:9000"},
            "requestContext": {"routeKey": "$default", "accountId": null, "stage": "$default", "requestId": "r",
                "authorizer": null, "apiId": null, "domainName": "localhost", "domainPrefix": "approval",
                "time": "12/Mar/2026:19:03:58 +0000", "timeEpoch": 1_773_342_238_i64,
                "http": {"method": "GET", "path": "/", "protocol": "http", "sourceIp": "127.0.0.1", "userAgent": "cargo-lambda"},
                "authentication": null},
            "isBase64Encoded": false
        });
        assert!(matches!(event(local), ApprovalEvent::Url(_)));
    }

    #[test]
    fn an_expire_payload_is_expire() {
        let e = event(json!({"action": "expire", "execution": "arn:x"}));
        assert!(
            matches!(&e, ApprovalEvent::Expire { execution, .. } if execution == "arn:x"),
            "{e:?}"
        );
    }

    #[test]
    fn a_request_payload_is_request() {
        let e = event(json!({
            "action": "request", "plan": plan(), "task_token": "t",
            "execution": "arn:x", "approving": "teardown"
        }));
        assert!(
            matches!(&e, ApprovalEvent::Request(r) if r.task_token == "t" && r.approving == Action::Teardown),
            "{e:?}"
        );
    }

    #[test]
    fn a_confirm_payload_is_confirm() {
        let e = event(json!({
            "action": "confirm", "approving": "deploy", "plan": plan(), "execution": "arn:x"
        }));
        assert!(
            matches!(&e, ApprovalEvent::Confirm(c) if c.execution == "arn:x"),
            "{e:?}"
        );
    }

    /// Each action reads only its own payload: an unknown action, a confirm
    /// carrying a task token or a request without one are refused.
    #[test]
    fn payloads_that_fit_no_variant_are_refused() {
        for payload in [
            json!({"action": "approve", "execution": "arn:x"}),
            json!({"action": "confirm", "plan": plan(), "execution": "arn:x", "task_token": "t"}),
            json!({"action": "request", "plan": plan(), "execution": "arn:x"}),
            json!({"execution": "arn:x"}),
            json!({"requestContext": {}}),
        ] {
            let err = stepdeploy_shared::lambda::input::<ApprovalEvent>(payload.clone())
                .expect_err(&payload.to_string());
            assert_eq!(err.error_type, error_names::VALIDATION_FAILED);
            assert!(
                err.error_message
                    .contains("{action: confirm, plan, execution, approving}"),
                "{}",
                err.error_message
            );
        }
    }

    /// A POSTed link (base64 form, as the local emulator sends it) is decided.
    #[tokio::test]
    async fn a_url_event_is_answered_with_a_page() {
        let gate = FakeGate::default();
        *gate.request.lock().unwrap() = Some(pending());
        let link = Link {
            execution: pending().execution,
            attempt: "a1".into(),
            key_id: "k".into(),
            approver: "lead@x.io".into(),
            decision: Decision::Approve,
            expires: 10_000,
        };
        let form = format!("{}&reason=fine", query(&KEY, &link));
        let reply = handle(
            event(url_event("POST", "", Some(&form))),
            &ports(&gate),
            &environments(),
            None,
            5_000,
        )
        .await
        .unwrap();
        let json = serde_json::to_value(&reply).unwrap();
        assert_eq!(json["statusCode"], 200, "{json}");
        assert!(
            json["body"]
                .as_str()
                .unwrap()
                .contains("1 of 2 approvals so far"),
            "{json}"
        );
        assert_eq!(gate.votes.lock().unwrap()[0].reason, "fine");
        // GET only shows the confirmation page.
        let reply = handle(
            event(url_event("GET", &query(&KEY, &link), None)),
            &ports(&gate),
            &environments(),
            None,
            5_000,
        )
        .await
        .unwrap();
        let json = serde_json::to_value(&reply).unwrap();
        assert!(
            json["body"]
                .as_str()
                .unwrap()
                .contains("<form method=\"post\">"),
            "{json}"
        );
    }

    #[tokio::test]
    async fn expire_closes_a_pending_gate() {
        let gate = FakeGate::default();
        let expire = || event(json!({"action": "expire", "execution": "arn:x"}));
        let reply = handle(expire(), &ports(&gate), &environments(), None, 0)
            .await
            .unwrap();
        assert_eq!(
            serde_json::to_value(reply).unwrap(),
            json!({"expired": false})
        );
        *gate.request.lock().unwrap() = Some(pending());
        let reply = handle(expire(), &ports(&gate), &environments(), None, 0)
            .await
            .unwrap();
        assert_eq!(
            serde_json::to_value(reply).unwrap(),
            json!({"expired": true})
        );
        assert_eq!(
            gate.request.lock().unwrap().as_ref().unwrap().status,
            status::EXPIRED
        );
    }

    /// `confirm` answers `ApprovalOutcome`, in the JSON it always had.
    #[tokio::test]
    async fn confirm_answers_the_quorum_and_the_late_decisions() {
        let gate = FakeGate::default();
        let mut request = pending();
        request.tenant = "goldencrust".into();
        request.image = "wordpress:6.4-apache".into();
        request.requested_by = "jane@kimmyai.io".into();
        request.status = status::APPROVED.into();
        *gate.request.lock().unwrap() = Some(request);
        let vote = |approver: &str, decision: &str, reason: &str, late| Vote {
            approver: approver.into(),
            decision: decision.into(),
            reason: reason.into(),
            late,
        };
        *gate.votes.lock().unwrap() = vec![
            vote("ops@kimmyai.io", "approve", "", false),
            vote("lead@kimmyai.io", "approve", "ok", false),
            vote("cto@kimmyai.io", "reject", "too late", true),
        ];
        let confirm = event(json!({
            "action": "confirm", "approving": "deploy", "plan": plan(), "execution": "arn:x"
        }));
        let reply = handle(confirm, &ports(&gate), &environments(), None, 0)
            .await
            .unwrap();
        assert_eq!(
            serde_json::to_value(reply).unwrap(),
            json!({
                "approved_by": ["lead@kimmyai.io", "ops@kimmyai.io"],
                "late": [{"approver": "cto@kimmyai.io", "decision": "reject", "reason": "too late"}]
            })
        );
        // Without a real quorum: ApprovalBypassed.
        gate.votes.lock().unwrap().remove(0);
        let confirm = event(json!({
            "action": "confirm", "approving": "deploy", "plan": plan(), "execution": "arn:x"
        }));
        let err = handle(confirm, &ports(&gate), &environments(), None, 0)
            .await
            .unwrap_err();
        assert_eq!(err.error_name(), error_names::APPROVAL_BYPASSED, "{err}");
    }

    #[tokio::test]
    async fn request_opens_the_gate_and_mails_the_approvers() {
        let gate = FakeGate::default();
        let request = || {
            event(json!({
                "action": "request", "plan": plan(), "task_token": "t",
                "execution": "arn:aws:states:af-south-1:1:execution:stepdeploy-deploy-tenant:g-1",
                "approving": "deploy"
            }))
        };
        let url = Some("https://abc.lambda-url.eu-west-1.on.aws/");
        let reply = handle(request(), &ports(&gate), &environments(), url, 1_000)
            .await
            .unwrap();
        let Reply::Opened(opened) = reply else {
            panic!("{reply:?}")
        };
        assert_eq!(
            (opened.requested, opened.required, opened.expires_at),
            (3, 2, 87_400)
        );
        let mails = gate.mails.lock().unwrap().clone();
        assert_eq!(mails.len(), 4, "three approvers and the requester");
        assert!(
            mails[0]
                .2
                .contains("Approve: https://abc.lambda-url.eu-west-1.on.aws/?e="),
            "{}",
            mails[0].2
        );
        assert!(mails[0].2.contains("region=af-south-1"), "{}", mails[0].2);
        // When the links die, in words that fit the gate (a day here; minutes for a short one).
        assert!(
            mails[0]
                .2
                .contains("expires at 1970-01-02T00:16Z, in 1 d 0 h"),
            "{}",
            mails[0].2
        );
        assert_eq!(mails[3].0, "jane@kimmyai.io");
        // The same waiting task asking again: the same attempt.
        let again = handle(request(), &ports(&gate), &environments(), url, 2_000)
            .await
            .unwrap();
        assert!(matches!(again, Reply::Opened(o) if o.attempt == opened.attempt));
    }

    /// No silent default for the links' URL: without it the gate does not open.
    #[tokio::test]
    async fn request_without_the_links_url_is_a_config_error() {
        let gate = FakeGate::default();
        let request = event(json!({
            "action": "request", "plan": plan(), "task_token": "t", "execution": "arn:x"
        }));
        let err = handle(request, &ports(&gate), &environments(), None, 0)
            .await
            .unwrap_err();
        assert_eq!(err.error_name(), error_names::CONFIG_INVALID);
        assert!(err.to_string().contains("STEPDEPLOY_APPROVAL_URL"), "{err}");
        assert!(gate.request.lock().unwrap().is_none() && gate.mails.lock().unwrap().is_empty());
    }

    /// A rollout's gate: one mail per approver listing the waves, one quorum
    /// judged for every tenant of the rollout.
    #[tokio::test]
    async fn a_rollout_gate_lists_its_waves_and_confirms_every_tenant() {
        let gate = FakeGate::default();
        let rollout = json!({"environment": "prod", "image": "wordpress:6.7",
                             "requested_by": "jane@kimmyai.io", "waves": [["acme"], ["bravo", "charlie"]]});
        let execution =
            "arn:aws:states:af-south-1:1:execution:stepdeploy-rollout-fleet:rollout-prod-1";
        let request = event(
            json!({"action": "request", "approving": "rollout", "rollout": rollout,
                                   "task_token": "t", "execution": execution}),
        );
        let url = Some("https://abc.lambda-url.eu-west-1.on.aws/");
        let reply = handle(request, &ports(&gate), &environments(), url, 1_000)
            .await
            .unwrap();
        assert!(matches!(reply, Reply::Opened(_)), "{reply:?}");
        let mails = gate.mails.lock().unwrap().clone();
        assert!(
            mails[0]
                .1
                .starts_with("Approve rollout to 3 tenants of prod?"),
            "{}",
            mails[0].1
        );
        assert!(
            mails[0].2.contains("wave 1: acme") && mails[0].2.contains("wave 2: bravo, charlie"),
            "{}",
            mails[0].2
        );
        let stored = gate.request.lock().unwrap().clone().expect("stored");
        assert_eq!(stored.tenants, ["acme", "bravo", "charlie"]);
        assert_eq!(stored.action, Action::Rollout);
        // A rollout gate needs its rollout, and takes no plan.
        let bare = event(
            json!({"action": "request", "approving": "rollout", "plan": plan(),
                                "task_token": "t", "execution": execution}),
        );
        let err = handle(bare, &ports(&gate), &environments(), url, 1_000)
            .await
            .unwrap_err();
        assert_eq!(err.error_name(), error_names::VALIDATION_FAILED, "{err}");
    }
}
