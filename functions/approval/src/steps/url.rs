//! The approvers' links, through the Function URL: GET checks the link and
//! shows a confirmation page (mail scanners that open links decide nothing),
//! POST checks it again and records the decision ([`super::decide`]).

use super::decide::decide;
use super::question;
use crate::link::{form, key_id, verify, Decision, Link, LinkError};
use crate::page::{html_escape, page, refuse, settled, unavailable, Page};
use crate::ports::{ApprovalRequest, LinkKey, TaskCallback, Votes};
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use base64::Engine;
use stepdeploy_shared::approvals::status;
use stepdeploy_shared::identity;

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

/// Handles a Function URL request: GET confirms, POST decides.
pub async fn http(
    event: &LambdaFunctionUrlRequest,
    votes: &impl Votes,
    keys: &impl LinkKey,
    runs: &impl TaskCallback,
    now: u64,
) -> Page {
    let method = event
        .request_context
        .http
        .method
        .as_deref()
        .unwrap_or("GET")
        .to_ascii_uppercase();
    match method.as_str() {
        "GET" | "HEAD" => {
            let params = form(event.raw_query_string.as_deref().unwrap_or_default());
            match check(votes, keys, runs, &params, now).await {
                Ok((link, request)) => {
                    // Who has decided so far in this attempt (a read failure
                    // only leaves the list out: the page still works).
                    let approved: Option<Vec<String>> = votes
                        .votes(&request.execution, &request.attempt)
                        .await
                        .ok()
                        .map(|cast| {
                            cast.iter()
                                .filter(|v| !v.late && v.decision == "approve")
                                .map(|v| v.approver.clone())
                                .collect()
                        });
                    confirmation(&params, &link, &request, approved.as_deref(), now)
                }
                Err(page) => page,
            }
        }
        "POST" => {
            let params = form(&body(event));
            let reason = sanitise(
                &params
                    .iter()
                    .find(|(k, _)| k == "reason")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
            );
            let (link, request) = match check(votes, keys, runs, &params, now).await {
                Ok(ok) => ok,
                Err(page) => return page,
            };
            match decide(votes, runs, &link, &request, &reason).await {
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

/// The POSTed form, as text.
fn body(event: &LambdaFunctionUrlRequest) -> String {
    let raw = event.body.as_deref().unwrap_or_default();
    if event.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    } else {
        raw.to_string()
    }
}

/// The GET answer: what the link decides, and a form that POSTs it.
fn confirmation(
    params: &[(String, String)],
    link: &Link,
    request: &ApprovalRequest,
    approved: Option<&[String]>,
    now: u64,
) -> Page {
    if request.status != status::PENDING {
        return settled(request);
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
    let waves: String = request
        .waves
        .iter()
        .zip(1..)
        .map(|(tenants, n)| format!("<li>wave {n}: {}</li>", html_escape(&tenants.join(", "))))
        .collect();
    let waves = if waves.is_empty() {
        waves
    } else {
        format!("<p>One approval covers every deployment of this rollout, in these waves:</p><ol>{waves}</ol>")
    };
    let evidence: String = request
        .evidence
        .iter()
        .map(|line| format!("<li>{}</li>", html_escape(line)))
        .collect();
    let waves = if evidence.is_empty() {
        waves
    } else {
        format!("<ul id=\"evidence\">{evidence}</ul>{waves}")
    };
    let so_far = match approved {
        Some([]) => "Approved so far: nobody yet".to_string(),
        Some(names) => format!("Approved so far: {}", names.join(", ")),
        None => "Approved so far: could not be read".to_string(),
    };
    let waves = format!(
        "{waves}<p id=\"approved-so-far\">{} ({} needed). The links expire at {}.</p>",
        html_escape(&so_far),
        request.required,
        html_escape(&stepdeploy_shared::names::when(request.expires_at, now)),
    );
    page(
        200,
        &format!("{verb}: {what}?"),
        &format!(
            "<p>{} asks to <b>{}</b> (image <code>{}</code>).</p>{waves}<p>You are <b>{}</b>. {} approvals from distinct approvers are needed.</p>\
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

/// Checks the link against the stored request; the error is the page to answer.
async fn check(
    votes: &impl Votes,
    keys: &impl LinkKey,
    runs: &impl TaskCallback,
    params: &[(String, String)],
    now: u64,
) -> Result<(Link, ApprovalRequest), Page> {
    let id = key_id(params).map_err(|e| refuse(e.status(), &e.to_string()))?;
    let key = keys
        .key(&id)
        .await
        .map_err(|e| unavailable(&e))?
        .ok_or_else(|| refuse(403, "this link's signing key is unknown"))?;
    let link =
        verify(&key, params, now).map_err(|e: LinkError| refuse(e.status(), &e.to_string()))?;
    let request = votes
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
        still_running(votes, runs, &request).await?;
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

/// The pending gate's run still runs; if not, the gate is closed (`ended`)
/// and the error is the page saying so.
async fn still_running(
    votes: &impl Votes,
    runs: &impl TaskCallback,
    request: &ApprovalRequest,
) -> Result<(), Page> {
    let run = runs.run_status(&request.execution).await.map_err(|e| {
        refuse(
            503,
            &format!("the approval service is unavailable ({})", e.operation),
        )
    })?;
    if run.as_deref() == Some("RUNNING") {
        return Ok(());
    }
    let _ = votes
        .settle(
            &request.execution,
            &request.attempt,
            status::PENDING,
            status::ENDED,
        )
        .await;
    Err(refuse(
        410,
        &format!(
            "this run has ended ({}); nothing waits for a decision",
            run.as_deref().unwrap_or("gone").to_lowercase()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
