//! The gate's two faces: the state machine's request (mail the approvers)
//! and the Function URL (GET shows a confirmation page, POST decides).

use crate::link::{form, query, verify, Decision, Link, LinkError};
use crate::ports::{sha256_hex, ApprovalRequest, Gate};
use base64::Engine;
use serde::Deserialize;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::error_names;
use stepdeploy_shared::errors::{diagnostic, ErrorName};
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
}

/// Why the gate failed (the HTTP face answers pages instead).
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// Not a request the gate understands, or no approval configured.
    #[error("invalid input: {0}")]
    Validation(String),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
}

impl ErrorName for ApprovalError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Validation(_) => error_names::VALIDATION_FAILED,
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

/// Mails every approver their own approve and reject links.
pub async fn request(
    input: GateRequest,
    gate: &impl Gate,
    base_url: &str,
    now: u64,
) -> Result<serde_json::Value, ApprovalError> {
    if input.action != "request" {
        return Err(ApprovalError::Validation(format!(
            "unknown action {:?}",
            input.action
        )));
    }
    let plan = &input.plan;
    let approval = plan.env.approval.as_ref().ok_or_else(|| {
        ApprovalError::Validation(format!("{} has no approval configured", plan.environment))
    })?;
    let expires_at = now + approval.timeout_seconds;
    let stored = ApprovalRequest {
        execution: input.execution.clone(),
        token_hash: sha256_hex(&input.task_token),
        tenant: plan.tenant.to_string(),
        environment: plan.environment.to_string(),
        image: plan.image.to_string(),
        requested_by: plan.requested_by.clone(),
        approvers: approval.approvers.clone(),
        required: approval.approvals_required,
        status: "pending".into(),
        expires_at,
    };
    gate.store(&stored).await?;
    let key = gate.key().await?;
    let region = input.execution.split(':').nth(3).unwrap_or("eu-west-1");
    for approver in &approval.approvers {
        let link = |decision| Link {
            execution: input.execution.clone(),
            approver: approver.clone(),
            decision,
            expires: expires_at,
        };
        let subject = mail_subject(
            plan.tenant.as_str(),
            plan.environment.as_str(),
            &plan.image.to_string(),
        );
        let body = format!(
            "{requester} asks to deploy {tenant} to {env}.\n\nImage: {image}\nApprovals needed: {n} of {total} (distinct approvers; the requester cannot approve)\nExecution: {execution}\nConsole: https://console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution}\n\nApprove: {base}/?{approve}\nReject:  {base}/?{reject}\n\nEach link is yours alone, works once and expires in {hours} h. Opening it shows a confirmation page; nothing is decided until you confirm.\n",
            requester = plan.requested_by,
            tenant = plan.tenant,
            env = plan.environment,
            image = plan.image,
            n = approval.approvals_required,
            total = approval.approvers.len(),
            execution = input.execution,
            base = base_url.trim_end_matches('/'),
            approve = query(&key, &link(Decision::Approve)),
            reject = query(&key, &link(Decision::Reject)),
            hours = approval.timeout_seconds / 3600,
        );
        gate.mail(approver, &subject, &body).await?;
    }
    Ok(
        serde_json::json!({"requested": approval.approvers.len(), "required": approval.approvals_required, "expires_at": expires_at}),
    )
}

/// Closes a request whose gate timed out, so late links are refused.
pub async fn expire(execution: &str, gate: &impl Gate) -> Result<serde_json::Value, ApprovalError> {
    let closed = gate.close(execution, "expired").await?;
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

/// Checks the link against the stored request; the error is the page to answer.
async fn check(
    gate: &impl Gate,
    params: &[(String, String)],
    now: u64,
) -> Result<(Link, ApprovalRequest), serde_json::Value> {
    let key = gate.key().await.map_err(|e| {
        refuse(
            503,
            &format!("the approval service is unavailable ({})", e.operation),
        )
    })?;
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
    if !request
        .approvers
        .iter()
        .any(|a| a.eq_ignore_ascii_case(&link.approver))
    {
        return Err(refuse(
            403,
            "you are not on this environment's approver list",
        ));
    }
    if request.requested_by.eq_ignore_ascii_case(&link.approver)
        && link.decision == Decision::Approve
    {
        return Err(refuse(
            403,
            "you requested this deployment, so you cannot approve it",
        ));
    }
    if request.status != "pending" {
        return Err(refuse(
            409,
            &format!("this deployment is already {}", request.status),
        ));
    }
    Ok((link, request))
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
            let hidden: String = params
                .iter()
                .filter(|(k, _)| ["e", "a", "d", "x", "s"].contains(&k.as_str()))
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
            page(
                200,
                &format!("{verb} {} to {}?", request.tenant, request.environment),
                &format!(
                    "<p>{} asks to deploy <b>{}</b> to <b>{}</b> with image <code>{}</code>.</p><p>You are <b>{}</b>. {} of {} approvals are needed.</p>\
                     <form method=\"post\">{hidden}<p><label>Reason (optional)<br><textarea name=\"reason\" rows=\"3\" cols=\"50\"></textarea></label></p>\
                     <p><button type=\"submit\">{verb}</button></p></form>",
                    html_escape(&request.requested_by),
                    html_escape(&request.tenant),
                    html_escape(&request.environment),
                    html_escape(&request.image),
                    html_escape(&link.approver),
                    request.required,
                    request.approvers.len()
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
            let reason = params
                .iter()
                .find(|(k, _)| k == "reason")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
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

/// Records a decision and, when it settles the gate, resumes or fails the run.
async fn decide(
    gate: &impl Gate,
    link: &Link,
    request: &ApprovalRequest,
    reason: &str,
) -> Result<serde_json::Value, AwsCallError> {
    if !gate
        .vote(
            &link.execution,
            &link.approver,
            link.decision.as_str(),
            reason,
        )
        .await?
    {
        return Ok(refuse(
            409,
            "you have already decided on this deployment; links work once",
        ));
    }
    let title = format!("{} to {}", request.tenant, request.environment);
    match link.decision {
        Decision::Reject => {
            if gate.close(&link.execution, "rejected").await? {
                if let Some(token) = gate.token(&link.execution, &request.token_hash).await? {
                    let cause = format!(
                        "rejected by {}{}",
                        link.approver,
                        if reason.is_empty() {
                            String::new()
                        } else {
                            format!(": {reason}")
                        }
                    );
                    gate.fail(&token, error_names::APPROVAL_REJECTED, &cause)
                        .await?;
                }
            }
            Ok(page(
                200,
                &format!("Rejected: {title}"),
                "<p>The deployment was stopped. Nothing will be changed.</p>",
            ))
        }
        Decision::Approve => {
            let approvals = gate.approvals(&link.execution).await?;
            let valid: Vec<&String> = approvals
                .iter()
                .filter(|a| {
                    request.approvers.iter().any(|x| x.eq_ignore_ascii_case(a))
                        && !a.eq_ignore_ascii_case(&request.requested_by)
                })
                .collect();
            let count = u32::try_from(valid.len()).unwrap_or(u32::MAX);
            if count >= request.required && gate.close(&link.execution, "approved").await? {
                if let Some(token) = gate.token(&link.execution, &request.token_hash).await? {
                    gate.succeed(&token, &serde_json::json!({"approved_by": valid}))
                        .await?;
                }
                return Ok(page(
                    200,
                    &format!("Approved: {title}"),
                    &format!(
                        "<p>{count} of {} approvals: the deployment continues.</p>",
                        request.required
                    ),
                ));
            }
            Ok(page(
                200,
                &format!("Approval recorded: {title}"),
                &format!("<p>{count} of {} approvals so far.</p>", request.required),
            ))
        }
    }
}

/// SNS subjects must be under 100 characters; an image with a digest is
/// longer than that, so the image is shortened (the body has it whole).
pub fn mail_subject(tenant: &str, env: &str, image: &str) -> String {
    const MAX: usize = 99;
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

    #[test]
    fn mail_subjects_fit_sns() {
        assert_eq!(
            mail_subject("goldencrust", "prod", "wordpress:6.4-apache"),
            "Approve goldencrust to prod? (wordpress:6.4-apache)"
        );
        let ecr = format!(
            "123456789012.dkr.ecr.af-south-1.amazonaws.com/wordpress@sha256:{}",
            "a".repeat(64)
        );
        let subject = mail_subject("abcdefghijklmnopqrst", "prodprod", &ecr);
        assert_eq!(subject.chars().count(), 99, "{subject}");
        assert!(subject.ends_with("...)"), "{subject}");
    }
}
