//! The gate's faces: the state machine's `request` (mail the approvers),
//! `confirm` (right after the gate: is the quorum real?) and `expire`, and
//! the Function URL (GET shows a confirmation page, POST decides).

use crate::link::{form, key_id, query, verify, Decision, Link, LinkError};
use crate::ports::{sha256_hex, ApprovalRequest, Gate, KeyError, VoteOutcome};
use base64::Engine;
use serde::Deserialize;
use stepdeploy_shared::approvals::{self, status, Action, Subject};
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::EnvironmentSet;
use stepdeploy_shared::error_names;
use stepdeploy_shared::errors::{diagnostic, ErrorName};
use stepdeploy_shared::identity;
use stepdeploy_shared::DeploymentPlan;

/// The state machine's request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateRequest {
    /// Always `request`.
    pub action: String,
    /// bootstrap's plan.
    pub plan: DeploymentPlan,
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
    pub action: String,
    /// bootstrap's (or teardown's) plan.
    pub plan: DeploymentPlan,
    /// `$$.Execution.Id`.
    pub execution: String,
    /// Deploy or teardown.
    #[serde(default)]
    pub approving: Action,
}

/// Why the gate failed (the HTTP face answers pages instead).
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// Not a request the gate understands, or no approval configured.
    #[error("invalid input: {0}")]
    Validation(String),
    /// The link-signing key is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The run went on without a real quorum.
    #[error("no valid approval for this run: {0}")]
    Bypassed(String),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
}

impl ErrorName for ApprovalError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Validation(_) => error_names::VALIDATION_FAILED,
            Self::Key(KeyError::TooShort(_)) => error_names::CONFIG_INVALID,
            Self::Key(KeyError::Aws(e)) => e.error_name(),
            Self::Bypassed(_) => error_names::APPROVAL_BYPASSED,
            Self::Aws(e) => e.error_name(),
        }
    }
}

impl From<ApprovalError> for lambda_runtime::Diagnostic {
    fn from(err: ApprovalError) -> Self {
        diagnostic(&err)
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A Function URL response.
fn page(status: u16, title: &str, body_html: &str) -> serde_json::Value {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><meta name=\"robots\" content=\"noindex\"></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:2em auto\"><h1>{t}</h1>{body_html}</body></html>",
        t = html_escape(title)
    );
    serde_json::json!({
        "statusCode": status,
        "headers": {"content-type": "text/html; charset=utf-8", "cache-control": "no-store", "referrer-policy": "no-referrer"},
        "body": html,
        "isBase64Encoded": false,
        // Function URL response fields; the local emulator insists on `cookies`.
        "cookies": []
    })
}

/// Longest reason kept (characters): Step Functions' cause is at most
/// 32,768 characters, mails and pages stay readable.
pub const MAX_REASON: usize = 500;

/// An approver's reason as stored and shown anywhere: control, format and
/// bidi characters (terminal escapes, zero-width, overrides) become spaces,
/// runs of spaces one, and at most [`MAX_REASON`] characters.
pub fn sanitise(reason: &str) -> String {
    let cleaned: String = reason
        .chars()
        .map(|c| if identity::invisible(c) { ' ' } else { c })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    let joined = words.join(" ");
    if joined.chars().count() <= MAX_REASON {
        return joined;
    }
    let cut: String = joined.chars().take(MAX_REASON - 1).collect();
    format!("{cut}…")
}

/// The plan's environment as this function's configs say (the allow-list
/// and quorum are never taken from the payload), and its approval settings.
fn approval_of(
    plan: &mut DeploymentPlan,
    environments: &EnvironmentSet,
) -> Result<stepdeploy_shared::config::ApprovalConfig, ApprovalError> {
    stepdeploy_shared::guard::reresolve(plan, environments)
        .map_err(|e| ApprovalError::Validation(e.to_string()))?;
    plan.env.approval.clone().ok_or_else(|| {
        ApprovalError::Validation(format!("{} has no approval configured", plan.environment))
    })
}

/// A fresh gate-attempt id: 128 random bits, hex.
fn new_attempt() -> Result<String, ApprovalError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        ApprovalError::Validation(format!("no randomness for the gate attempt: {e}"))
    })?;
    Ok(hex::encode(bytes))
}

/// The question, in words (`deploy goldencrust to prod`).
fn question(action: Action, tenant: &str, env: &str) -> String {
    match action {
        Action::Deploy => format!("deploy {tenant} to {env}"),
        Action::Teardown => format!("remove {tenant} from {env}"),
    }
}

/// Opens the gate: stores this attempt, mails every approver but the
/// requester their own links, and the requester a notice.
pub async fn request(
    mut input: GateRequest,
    gate: &impl Gate,
    environments: &EnvironmentSet,
    base_url: &str,
    now: u64,
) -> Result<serde_json::Value, ApprovalError> {
    if input.action != "request" {
        return Err(ApprovalError::Validation(format!(
            "unknown action {:?}",
            input.action
        )));
    }
    let approval = approval_of(&mut input.plan, environments)?;
    let plan = &input.plan;
    let requester = identity::canonical_email("plan.requested_by", &plan.requested_by)
        .map_err(|e| ApprovalError::Validation(e.to_string()))?;
    let approvers: Vec<String> = approval
        .approvers
        .iter()
        .filter_map(|a| identity::canonical("", a).ok())
        .collect();
    let token_hash = sha256_hex(&input.task_token);
    let existing = gate.request(&input.execution).await?;
    let stored = match existing {
        // The same waiting task asking again (a retried invocation): same attempt, same links.
        Some(r) if r.token_hash == token_hash && r.status == status::PENDING => r,
        // A new gate: a first one, a redriven run, or an execution name used
        // again. Earlier votes and links belong to the earlier attempt.
        previous => {
            let stored = ApprovalRequest {
                execution: input.execution.clone(),
                attempt: new_attempt()?,
                action: input.approving,
                token_hash,
                tenant: plan.tenant.to_string(),
                environment: plan.environment.to_string(),
                image: plan.image.to_string(),
                requested_by: requester.clone(),
                approvers: approvers.clone(),
                required: approval.approvals_required,
                status: status::PENDING.into(),
                expires_at: now + approval.timeout_seconds,
            };
            if !gate
                .open(&stored, previous.as_ref().map(|p| p.attempt.as_str()))
                .await?
            {
                return Err(ApprovalError::Validation(
                    "another invocation opened this run's gate at the same moment; the state machine retries"
                        .into(),
                ));
            }
            stored
        }
    };
    let key = gate.signing_key().await?;
    let region = input.execution.split(':').nth(3).unwrap_or("eu-west-1");
    let what = question(stored.action, &stored.tenant, &stored.environment);
    // Mailed as configured (the SNS subscriptions filter on that spelling),
    // compared canonically.
    let others: Vec<&String> = approval
        .approvers
        .iter()
        .filter(|a| !identity::same(a, &requester))
        .collect();
    let hours = approval.timeout_seconds.div_ceil(3600);
    let removal = if stored.action == Action::Teardown {
        format!(
            "\nRemoving deletes the tenant's service, listener rule, target group, DNS record and config document. \
             Its database is kept (renamed) and its secret can be restored for {} days; see the README, \"Restoring a removed tenant\".\n",
            stepdeploy_shared::config::RETENTION_DAYS
        )
    } else {
        String::new()
    };
    for approver in &others {
        let link = |decision| Link {
            execution: input.execution.clone(),
            attempt: stored.attempt.clone(),
            key_id: key.id.clone(),
            approver: (*approver).clone(),
            decision,
            expires: stored.expires_at,
        };
        let subject = mail_subject(
            stored.action,
            &stored.tenant,
            &stored.environment,
            &stored.image,
        );
        let body = format!(
            "{requester} asks to {what}.\n{removal}\nImage: {image}\nApprovals needed: {n} of the {total} approvers other than the requester (distinct people; the requester cannot approve)\nExecution: {execution}\nConsole: https://console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution}\n\nApprove: {base}/?{approve}\nReject:  {base}/?{reject}\n\nEach link is yours alone, works once, belongs to this request only and expires in {hours} h. Opening it shows a confirmation page; nothing is decided until you confirm.\n",
            image = stored.image,
            n = stored.required,
            total = others.len(),
            execution = input.execution,
            base = base_url.trim_end_matches('/'),
            approve = query(&key.bytes, &link(Decision::Approve)),
            reject = query(&key.bytes, &link(Decision::Reject)),
        );
        gate.mail(approver, &subject, &body).await?;
    }
    // The requester learns where their request stands, without links.
    let names: Vec<&str> = others.iter().map(|a| a.as_str()).collect();
    gate.mail(
        &requester,
        &stepdeploy_shared::names::sns_subject(&format!("Waiting for approval: {what}")),
        &format!(
            "Your request to {what} waits for {n} approval(s) from: {list}.\nYou cannot approve your own request, so you get no links.\nExecution: {execution}\n",
            n = stored.required,
            list = names.join(", "),
            execution = input.execution,
        ),
    )
    .await?;
    Ok(serde_json::json!({
        "requested": others.len(),
        "required": stored.required,
        "expires_at": stored.expires_at,
        "attempt": stored.attempt,
    }))
}

/// The step right after the gate: the run goes on only if the table holds a
/// real quorum for exactly this change (resuming the task with
/// `SendTaskSuccess` by hand is not enough).
pub async fn confirm(
    mut input: ConfirmRequest,
    gate: &impl Gate,
    environments: &EnvironmentSet,
) -> Result<serde_json::Value, ApprovalError> {
    if input.action != "confirm" {
        return Err(ApprovalError::Validation(format!(
            "unknown action {:?}",
            input.action
        )));
    }
    let approval = approval_of(&mut input.plan, environments)?;
    let plan = &input.plan;
    let request = gate.request(&input.execution).await?;
    let votes = match &request {
        Some(r) => gate.votes(&input.execution, &r.attempt).await?,
        None => Vec::new(),
    };
    let subject = Subject {
        execution: &input.execution,
        action: input.approving,
        tenant: plan.tenant.as_str(),
        environment: plan.environment.as_str(),
        image: plan.image.as_str(),
        requested_by: &plan.requested_by,
    };
    let approved_by = approvals::judge(&subject, request.as_ref(), &votes, &approval)
        .map_err(ApprovalError::Bypassed)?;
    let late: Vec<serde_json::Value> = votes
        .iter()
        .filter(|v| v.late)
        .map(|v| serde_json::json!({"approver": v.approver, "decision": v.decision, "reason": v.reason}))
        .collect();
    Ok(serde_json::json!({ "approved_by": approved_by, "late": late }))
}

/// Closes a request whose gate timed out, so late links are refused.
pub async fn expire(execution: &str, gate: &impl Gate) -> Result<serde_json::Value, ApprovalError> {
    let Some(request) = gate.request(execution).await? else {
        return Ok(serde_json::json!({ "expired": false }));
    };
    let closed = gate
        .settle(
            execution,
            &request.attempt,
            status::PENDING,
            status::EXPIRED,
        )
        .await?;
    Ok(serde_json::json!({ "expired": closed }))
}

/// Why a valid-looking link cannot be used now.
fn refuse(status: u16, why: &str) -> serde_json::Value {
    page(
        status,
        "This link cannot be used",
        &format!("<p>{}</p><p>Nothing was changed.</p>", html_escape(why)),
    )
}

fn unavailable(e: &KeyError) -> serde_json::Value {
    match e {
        KeyError::TooShort(_) => refuse(
            503,
            "the approval service is misconfigured (its signing key is too short)",
        ),
        KeyError::Aws(e) => refuse(
            503,
            &format!("the approval service is unavailable ({})", e.operation),
        ),
    }
}

/// Checks the link against the stored request; the error is the page to answer.
async fn check(
    gate: &impl Gate,
    params: &[(String, String)],
    now: u64,
) -> Result<(Link, ApprovalRequest), serde_json::Value> {
    let id = key_id(params).map_err(|e| refuse(e.status(), &e.to_string()))?;
    let key = gate
        .key(&id)
        .await
        .map_err(|e| unavailable(&e))?
        .ok_or_else(|| refuse(403, "this link's signing key is unknown"))?;
    let link =
        verify(&key, params, now).map_err(|e: LinkError| refuse(e.status(), &e.to_string()))?;
    let request = gate
        .request(&link.execution)
        .await
        .map_err(|e| {
            refuse(
                503,
                &format!("the approval service is unavailable ({})", e.operation),
            )
        })?
        .ok_or_else(|| refuse(404, "no approval is pending for this deployment"))?;
    if request.attempt != link.attempt {
        return Err(refuse(
            410,
            "this link belongs to an earlier approval request for this run; use the newest mail",
        ));
    }
    if request.status == status::ENDED {
        return Err(refuse(
            410,
            "this run has ended; nothing waits for a decision",
        ));
    }
    // A run stopped (or failed, or timed out) while its gate waited: the
    // gate closes and its links say so.
    if request.status == status::PENDING {
        let run = gate.run_status(&request.execution).await.map_err(|e| {
            refuse(
                503,
                &format!("the approval service is unavailable ({})", e.operation),
            )
        })?;
        if run.as_deref() != Some("RUNNING") {
            let _ = gate
                .settle(
                    &request.execution,
                    &request.attempt,
                    status::PENDING,
                    status::ENDED,
                )
                .await;
            return Err(refuse(
                410,
                &format!(
                    "this run has ended ({}); nothing waits for a decision",
                    run.as_deref().unwrap_or("gone").to_lowercase()
                ),
            ));
        }
    }
    if !request
        .approvers
        .iter()
        .any(|a| identity::same(a, &link.approver))
    {
        return Err(refuse(
            403,
            "you are not on this environment's approver list",
        ));
    }
    if identity::same(&request.requested_by, &link.approver) && link.decision == Decision::Approve {
        return Err(refuse(
            403,
            "you requested this change, so you cannot approve it",
        ));
    }
    Ok((link, request))
}

/// The page for a gate that is no longer pending.
fn settled(request: &ApprovalRequest) -> serde_json::Value {
    match request.status.as_str() {
        status::APPROVED | status::SETTLING => refuse(409, "this change was already approved"),
        status::REJECTED => refuse(409, "this change was already rejected"),
        status::EXPIRED => refuse(410, "this approval request expired"),
        _ => refuse(410, "this run has ended"),
    }
}

/// Handles a Function URL request: GET confirms, POST decides.
pub async fn http(event: &serde_json::Value, gate: &impl Gate, now: u64) -> serde_json::Value {
    let method = event["requestContext"]["http"]["method"]
        .as_str()
        .unwrap_or("GET")
        .to_ascii_uppercase();
    match method.as_str() {
        "GET" | "HEAD" => {
            let params = form(event["rawQueryString"].as_str().unwrap_or_default());
            let (link, request) = match check(gate, &params, now).await {
                Ok(ok) => ok,
                Err(page) => return page,
            };
            if request.status != status::PENDING {
                return settled(&request);
            }
            let hidden: String = params
                .iter()
                .filter(|(k, _)| ["e", "n", "k", "a", "d", "x", "s"].contains(&k.as_str()))
                .map(|(k, v)| {
                    format!(
                        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                        html_escape(k),
                        html_escape(v)
                    )
                })
                .collect();
            let verb = if link.decision == Decision::Approve {
                "Approve"
            } else {
                "Reject"
            };
            let what = question(request.action, &request.tenant, &request.environment);
            page(
                200,
                &format!("{verb}: {what}?"),
                &format!(
                    "<p>{} asks to <b>{}</b> (image <code>{}</code>).</p><p>You are <b>{}</b>. {} approvals from distinct approvers are needed.</p>\
                     <form method=\"post\">{hidden}<p><label>Reason (optional)<br><textarea name=\"reason\" rows=\"3\" cols=\"50\" maxlength=\"{MAX_REASON}\"></textarea></label></p>\
                     <p><button type=\"submit\">{verb}</button></p></form>",
                    html_escape(&request.requested_by),
                    html_escape(&what),
                    html_escape(&request.image),
                    html_escape(&link.approver),
                    request.required,
                ),
            )
        }
        "POST" => {
            let raw = event["body"].as_str().unwrap_or_default();
            let body = if event["isBase64Encoded"] == true {
                base64::engine::general_purpose::STANDARD
                    .decode(raw)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            } else {
                raw.to_string()
            };
            let params = form(&body);
            let reason = sanitise(
                &params
                    .iter()
                    .find(|(k, _)| k == "reason")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
            );
            let (link, request) = match check(gate, &params, now).await {
                Ok(ok) => ok,
                Err(page) => return page,
            };
            match decide(gate, &link, &request, &reason).await {
                Ok(page) => page,
                Err(e) => refuse(
                    503,
                    &format!("the decision could not be recorded ({})", e.operation),
                ),
            }
        }
        other => refuse(405, &format!("{other} is not supported")),
    }
}

/// Calls `f` up to three times, 0.2 s then 0.8 s apart: the run waits on it.
async fn with_retries<T, F, Fut>(mut f: F) -> Result<T, AwsCallError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsCallError>>,
{
    let mut delay = std::time::Duration::from_millis(200);
    let mut tries = 0;
    loop {
        tries += 1;
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if tries >= 3 => return Err(e),
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
        }
    }
}

/// A decision that came after the gate settled: recorded, answered as late.
async fn too_late(
    gate: &impl Gate,
    link: &Link,
    reason: &str,
) -> Result<serde_json::Value, AwsCallError> {
    let Some(now) = gate.request(&link.execution).await? else {
        return Ok(refuse(410, "this run has ended"));
    };
    if now.attempt != link.attempt {
        return Ok(refuse(
            410,
            "this link belongs to an earlier approval request for this run; use the newest mail",
        ));
    }
    let voter = identity::canonical("", &link.approver).unwrap_or_else(|_| link.approver.clone());
    gate.late(&now, &voter, link.decision.as_str(), reason)
        .await?;
    let what = question(now.action, &now.tenant, &now.environment);
    let state = match now.status.as_str() {
        status::APPROVED | status::SETTLING => "the quorum had already approved it".to_string(),
        other => format!("it was already {other}"),
    };
    Ok(page(
        409,
        &format!("Too late: {what}"),
        &format!(
            "<p>Your {} arrived after the gate had settled: {}. It is recorded (the run's history and outcome mail show it) and changes nothing.</p>",
            html_escape(link.decision.as_str()),
            html_escape(&state)
        ),
    ))
}

/// Resumes a run whose quorum is reached (status `settling`), with retries;
/// marks the request `approved` once the run has its answer.
async fn resume(
    gate: &impl Gate,
    request: &ApprovalRequest,
    approved_by: &[String],
) -> Result<serde_json::Value, AwsCallError> {
    let what = question(request.action, &request.tenant, &request.environment);
    let Some(token) = with_retries(|| gate.token(&request.execution, &request.token_hash)).await?
    else {
        return Ok(refuse(410, "this run has ended"));
    };
    let output = serde_json::json!({ "approved_by": approved_by, "attempt": request.attempt });
    match with_retries(|| gate.succeed(&token, &output)).await {
        Ok(()) => {}
        Err(e) => {
            return Ok(page(
                503,
                &format!("Approved, not yet resumed: {what}"),
                &format!(
                    "<p>The quorum is reached and recorded, but the run could not be resumed yet ({}). \
                     Open your link again and confirm to retry; nothing else is needed.</p>",
                    html_escape(e.operation)
                ),
            ))
        }
    }
    gate.settle(
        &request.execution,
        &request.attempt,
        status::SETTLING,
        status::APPROVED,
    )
    .await?;
    Ok(page(
        200,
        &format!("Approved: {what}"),
        &format!(
            "<p>{n} of {n} approvals: the change continues.</p>",
            n = request.required
        ),
    ))
}

/// Records a decision and, when it settles the gate, resumes or fails the run.
async fn decide(
    gate: &impl Gate,
    link: &Link,
    request: &ApprovalRequest,
    reason: &str,
) -> Result<serde_json::Value, AwsCallError> {
    match request.status.as_str() {
        status::PENDING => {}
        // The quorum was reached but the resume failed: any approver's
        // confirmation retries it.
        status::SETTLING if link.decision == Decision::Approve => {
            let votes = gate.votes(&request.execution, &request.attempt).await?;
            return resume(gate, request, &valid_approvals(request, &votes)).await;
        }
        _ => return too_late(gate, link, reason).await,
    }
    // One vote per person: the vote's key is the canonical identity.
    let voter = identity::canonical("", &link.approver).unwrap_or_else(|_| link.approver.clone());
    match gate
        .vote(request, &voter, link.decision.as_str(), reason)
        .await?
    {
        VoteOutcome::Recorded => {}
        VoteOutcome::AlreadyDecided => {
            return Ok(refuse(
                409,
                "you have already decided on this change; links work once",
            ))
        }
        VoteOutcome::GateSettled => return too_late(gate, link, reason).await,
    }
    let what = question(request.action, &request.tenant, &request.environment);
    match link.decision {
        Decision::Reject => {
            if !gate
                .settle(
                    &request.execution,
                    &request.attempt,
                    status::PENDING,
                    status::REJECTED,
                )
                .await?
            {
                return too_late(gate, link, reason).await;
            }
            let cause = format!(
                "rejected by {}{}",
                link.approver,
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                }
            );
            let stopped =
                match with_retries(|| gate.token(&request.execution, &request.token_hash)).await? {
                    Some(token) => {
                        with_retries(|| gate.fail(&token, error_names::APPROVAL_REJECTED, &cause))
                            .await
                            .is_ok()
                    }
                    None => false,
                };
            let text = if stopped {
                "<p>The run was stopped. Nothing will be changed.</p>"
            } else {
                "<p>Your rejection is recorded and the gate is closed: the run cannot go on. \
                 It could not be told at once, so it fails when the gate times out.</p>"
            };
            Ok(page(200, &format!("Rejected: {what}"), text))
        }
        Decision::Approve => {
            let votes = gate.votes(&request.execution, &request.attempt).await?;
            let valid = valid_approvals(request, &votes);
            let count = u32::try_from(valid.len()).unwrap_or(u32::MAX);
            if count < request.required {
                return Ok(page(
                    200,
                    &format!("Approval recorded: {what}"),
                    &format!("<p>{count} of {} approvals so far.</p>", request.required),
                ));
            }
            if !gate
                .settle(
                    &request.execution,
                    &request.attempt,
                    status::PENDING,
                    status::SETTLING,
                )
                .await?
            {
                return Ok(page(
                    200,
                    &format!("Approval recorded: {what}"),
                    &format!(
                        "<p>Your approval is recorded; the gate had already opened with {n} of {n} approvals.</p>",
                        n = request.required
                    ),
                ));
            }
            resume(gate, request, &valid).await
        }
    }
}

/// Distinct canonical approvers of this attempt, on its allow-list, not the requester.
fn valid_approvals(request: &ApprovalRequest, votes: &[approvals::Vote]) -> Vec<String> {
    let mut valid: Vec<String> = votes
        .iter()
        .filter(|v| !v.late && v.decision == "approve")
        .filter_map(|v| identity::canonical("", &v.approver).ok())
        .filter(|a| {
            request.approvers.iter().any(|x| identity::same(x, a))
                && !identity::same(a, &request.requested_by)
        })
        .collect();
    valid.sort();
    valid.dedup();
    valid
}

/// SNS subjects must be under 100 characters; an image with a digest is
/// longer than that, so the image is shortened (the body has it whole).
pub fn mail_subject(action: Action, tenant: &str, env: &str, image: &str) -> String {
    const MAX: usize = 99;
    if action == Action::Teardown {
        return stepdeploy_shared::names::sns_subject(&format!("Remove {tenant} from {env}?"));
    }
    let full = format!("Approve {tenant} to {env}? ({image})");
    if full.chars().count() <= MAX {
        return full;
    }
    let head = format!("Approve {tenant} to {env}? (");
    let room = MAX.saturating_sub(head.chars().count() + 4);
    let short: String = image.chars().take(room).collect();
    format!("{head}{short}...)")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gate's storage in memory, with the races and failures the tests set up.
    #[derive(Default)]
    struct FakeGate {
        request: std::sync::Mutex<Option<ApprovalRequest>>,
        votes: std::sync::Mutex<Vec<approvals::Vote>>,
        /// Another decision settles the gate just before this vote's transaction.
        settle_before_vote: std::sync::Mutex<Option<&'static str>>,
        /// SendTaskSuccess fails this many times.
        resume_failures: std::sync::Mutex<u32>,
        resumed: std::sync::Mutex<u32>,
    }

    impl Gate for FakeGate {
        async fn signing_key(&self) -> Result<crate::ports::SigningKey, KeyError> {
            Ok(crate::ports::SigningKey {
                id: "k".into(),
                bytes: vec![7; 32],
            })
        }
        async fn key(&self, _id: &str) -> Result<Option<Vec<u8>>, KeyError> {
            Ok(Some(vec![7; 32]))
        }
        async fn open(&self, r: &ApprovalRequest, _: Option<&str>) -> Result<bool, AwsCallError> {
            *self.request.lock().unwrap() = Some(r.clone());
            Ok(true)
        }
        async fn request(&self, _: &str) -> Result<Option<ApprovalRequest>, AwsCallError> {
            Ok(self.request.lock().unwrap().clone())
        }
        async fn vote(
            &self,
            r: &ApprovalRequest,
            approver: &str,
            decision: &str,
            reason: &str,
        ) -> Result<VoteOutcome, AwsCallError> {
            if let Some(to) = self.settle_before_vote.lock().unwrap().take() {
                if let Some(current) = self.request.lock().unwrap().as_mut() {
                    current.status = to.into();
                }
            }
            let current = self.request.lock().unwrap().clone();
            if current.is_none_or(|c| c.status != status::PENDING || c.attempt != r.attempt) {
                return Ok(VoteOutcome::GateSettled);
            }
            let mut votes = self.votes.lock().unwrap();
            if votes.iter().any(|v| !v.late && v.approver == approver) {
                return Ok(VoteOutcome::AlreadyDecided);
            }
            votes.push(approvals::Vote {
                approver: approver.into(),
                decision: decision.into(),
                reason: reason.into(),
                late: false,
            });
            Ok(VoteOutcome::Recorded)
        }
        async fn late(
            &self,
            _: &ApprovalRequest,
            approver: &str,
            decision: &str,
            reason: &str,
        ) -> Result<(), AwsCallError> {
            self.votes.lock().unwrap().push(approvals::Vote {
                approver: approver.into(),
                decision: decision.into(),
                reason: reason.into(),
                late: true,
            });
            Ok(())
        }
        async fn votes(&self, _: &str, _: &str) -> Result<Vec<approvals::Vote>, AwsCallError> {
            Ok(self.votes.lock().unwrap().clone())
        }
        async fn settle(
            &self,
            _: &str,
            attempt: &str,
            from: &str,
            to: &str,
        ) -> Result<bool, AwsCallError> {
            let mut request = self.request.lock().unwrap();
            match request.as_mut() {
                Some(r) if r.status == from && r.attempt == attempt => {
                    r.status = to.into();
                    Ok(true)
                }
                _ => Ok(false),
            }
        }
        async fn mail(&self, _: &str, _: &str, _: &str) -> Result<(), AwsCallError> {
            Ok(())
        }
        async fn token(&self, _: &str, _: &str) -> Result<Option<String>, AwsCallError> {
            Ok(Some("token".into()))
        }
        async fn run_status(&self, _: &str) -> Result<Option<String>, AwsCallError> {
            Ok(Some("RUNNING".into()))
        }
        async fn succeed(&self, _: &str, _: &serde_json::Value) -> Result<(), AwsCallError> {
            let mut failures = self.resume_failures.lock().unwrap();
            if *failures > 0 {
                *failures -= 1;
                return Err(AwsCallError::other(
                    "states:SendTaskSuccess",
                    std::io::Error::other("throttled"),
                ));
            }
            *self.resumed.lock().unwrap() += 1;
            Ok(())
        }
        async fn fail(&self, _: &str, _: &str, _: &str) -> Result<(), AwsCallError> {
            Ok(())
        }
    }

    fn pending() -> ApprovalRequest {
        ApprovalRequest {
            execution: "arn:aws:states:eu-west-1:1:execution:stepdeploy-deploy-tenant:acme-prod-1"
                .into(),
            attempt: "a1".into(),
            action: Action::Deploy,
            token_hash: "h".into(),
            tenant: "acme".into(),
            environment: "prod".into(),
            image: "wordpress:6".into(),
            requested_by: "jane@x.io".into(),
            approvers: vec!["lead@x.io".into(), "ops@x.io".into(), "cto@x.io".into()],
            required: 2,
            status: status::PENDING.into(),
            expires_at: 10_000,
        }
    }

    fn link(approver: &str, decision: Decision) -> Link {
        Link {
            execution: pending().execution,
            attempt: "a1".into(),
            key_id: "k".into(),
            approver: approver.into(),
            decision,
            expires: 10_000,
        }
    }

    fn body(page: &serde_json::Value) -> String {
        format!(
            "{} {}",
            page["statusCode"],
            page["body"].as_str().unwrap_or_default()
        )
    }

    /// A rejection that loses the race with the deciding approval is told so
    /// and recorded as late; it does not claim to have stopped anything.
    #[tokio::test]
    async fn a_rejection_after_the_gate_opened_is_answered_as_late() {
        let gate = FakeGate::default();
        gate.open(&pending(), None).await.unwrap();
        *gate.settle_before_vote.lock().unwrap() = Some(status::APPROVED);
        let page = decide(&gate, &link("cto@x.io", Decision::Reject), &pending(), "no")
            .await
            .unwrap();
        let text = body(&page);
        assert!(
            text.starts_with("409")
                && text.contains("Too late")
                && text.contains("already approved"),
            "{text}"
        );
        assert!(!text.contains("stopped"), "{text}");
        let votes = gate.votes.lock().unwrap().clone();
        assert_eq!(votes.len(), 1);
        assert!(votes[0].late && votes[0].decision == "reject");
    }

    /// Counts never pass the quorum; a third approver is told the gate had opened.
    #[tokio::test]
    async fn quorum_counts_never_exceed_the_quorum() {
        let gate = FakeGate::default();
        gate.open(&pending(), None).await.unwrap();
        let first = body(
            &decide(&gate, &link("lead@x.io", Decision::Approve), &pending(), "")
                .await
                .unwrap(),
        );
        assert!(first.contains("1 of 2 approvals so far"), "{first}");
        let second = body(
            &decide(&gate, &link("ops@x.io", Decision::Approve), &pending(), "")
                .await
                .unwrap(),
        );
        assert!(
            second.contains("2 of 2 approvals: the change continues"),
            "{second}"
        );
        let now = gate.request.lock().unwrap().clone().unwrap();
        let third = body(
            &decide(&gate, &link("cto@x.io", Decision::Approve), &now, "")
                .await
                .unwrap(),
        );
        assert!(
            third.contains("Too late") && !third.contains("3 of"),
            "{third}"
        );
        assert_eq!(*gate.resumed.lock().unwrap(), 1);
    }

    /// A failed resume is retried, then reported; the gate stays `settling`
    /// and the next confirmation resumes the run.
    #[tokio::test]
    async fn a_failed_resume_is_retried_and_can_be_finished() {
        let gate = FakeGate::default();
        gate.open(&pending(), None).await.unwrap();
        decide(&gate, &link("lead@x.io", Decision::Approve), &pending(), "")
            .await
            .unwrap();
        *gate.resume_failures.lock().unwrap() = 5;
        let page = body(
            &decide(&gate, &link("ops@x.io", Decision::Approve), &pending(), "")
                .await
                .unwrap(),
        );
        assert!(
            page.starts_with("503") && page.contains("not yet resumed"),
            "{page}"
        );
        let now = gate.request.lock().unwrap().clone().unwrap();
        assert_eq!(now.status, status::SETTLING);
        assert_eq!(*gate.resume_failures.lock().unwrap(), 2, "three tries");
        *gate.resume_failures.lock().unwrap() = 0;
        let page = body(
            &decide(&gate, &link("ops@x.io", Decision::Approve), &now, "")
                .await
                .unwrap(),
        );
        assert!(
            page.starts_with("200") && page.contains("continues"),
            "{page}"
        );
        assert_eq!(
            gate.request.lock().unwrap().clone().unwrap().status,
            status::APPROVED
        );
    }

    #[test]
    fn reasons_are_one_clean_bounded_line() {
        assert_eq!(
            sanitise("not\u{1b}[31m today\r\n\u{202E}kcab\u{200B}"),
            "not [31m today kcab"
        );
        let long = sanitise(&"x".repeat(40_000));
        assert_eq!(long.chars().count(), MAX_REASON);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn mail_subjects_fit_sns() {
        assert_eq!(
            mail_subject(
                Action::Deploy,
                "goldencrust",
                "prod",
                "wordpress:6.4-apache"
            ),
            "Approve goldencrust to prod? (wordpress:6.4-apache)"
        );
        let ecr = format!(
            "123456789012.dkr.ecr.af-south-1.amazonaws.com/wordpress@sha256:{}",
            "a".repeat(64)
        );
        let subject = mail_subject(Action::Deploy, "abcdefghijklmnopqrst", "prodprod", &ecr);
        assert_eq!(subject.chars().count(), 99, "{subject}");
        assert!(subject.ends_with("...)"), "{subject}");
    }
}
