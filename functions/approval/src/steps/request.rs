//! `request`: the state machine opens the gate (`waitForTaskToken`). The
//! attempt is stored, every approver but the requester is mailed their own
//! approve/reject links, and the requester a notice without links.

use super::question;
use crate::error::ApprovalError;
use crate::handler::{GateOpened, GateRequest, Question};
use crate::link::{query, Decision, Link};
use crate::ports::{
    sha256_hex, ApprovalRequest, LinkKey, Mailer, Ports, SigningKey, TaskCallback, Votes,
    LINKS_URL_VAR,
};
use stepdeploy_shared::approvals::{status, Action};
use stepdeploy_shared::config::EnvironmentSet;
use stepdeploy_shared::identity;

/// Opens the gate: stores this attempt, mails every approver but the
/// requester their own links, and the requester a notice.
pub async fn request<V: Votes, M: Mailer, K: LinkKey, T: TaskCallback>(
    input: GateRequest,
    ports: &Ports<V, M, K, T>,
    environments: &EnvironmentSet,
    links_url: Option<&str>,
    now: u64,
) -> Result<GateOpened, ApprovalError> {
    let base_url = links_url.ok_or(ApprovalError::MissingSetting(LINKS_URL_VAR))?;
    let (votes, keys, mailer, runs) = (&ports.votes, &ports.keys, &ports.mailer, &ports.runs);
    let GateRequest {
        plan,
        rollout,
        task_token,
        execution,
        approving,
        ..
    } = input;
    let mut question = Question::of(approving, plan, rollout, environments)?;
    if approving == Action::Deploy {
        // Where the image already ran: evidence, not a condition (a failed
        // look-up says so instead of holding the gate).
        let earlier = runs
            .ran_before(
                &execution,
                &question.tenant,
                &question.environment,
                &question.image,
            )
            .await;
        match earlier {
            Ok(lines) if lines.is_empty() => question.evidence.push(format!(
                "Already ran: nowhere else yet ({} has no finished run of it in another environment in this stack's recent history)",
                question.image
            )),
            Ok(lines) => question.evidence.extend(lines),
            Err(e) => question
                .evidence
                .push(format!("Already ran: could not be read ({})", e.operation)),
        }
    }
    let approval = question.approval.clone();
    let requester = identity::canonical_email("plan.requested_by", &question.requested_by)
        .map_err(|e| ApprovalError::Validation(e.to_string()))?;
    let stored = open_attempt(&question, &execution, &task_token, &requester, votes, now).await?;
    let key = keys.signing_key().await?;
    // Mailed as configured (the SNS subscriptions filter on that spelling),
    // compared canonically.
    let others: Vec<&String> = approval
        .approvers
        .iter()
        .filter(|a| !identity::same(a, &requester))
        .collect();
    let mail = Mail {
        stored: &stored,
        waves: &question.waves,
        execution: &execution,
        requester: &requester,
        others: &others,
        // "2026-11-30T14:02Z, in 1 min" for a 90-second gate, "…, in 1 d 0 h" for a day.
        expires: stepdeploy_shared::names::when(stored.expires_at, now),
    };
    let subject = if question.rollback {
        stepdeploy_shared::names::sns_subject(&format!(
            "Approve ROLLBACK of {} in {}? ({})",
            stored.tenant, stored.environment, stored.image
        ))
    } else {
        mail_subject(
            stored.action,
            &stored.tenant,
            &stored.environment,
            &stored.image,
        )
    };
    for approver in &others {
        let body = mail.to_approver(approver, &key, base_url);
        mailer.mail(approver, &subject, &body).await?;
    }
    // The requester learns where their request stands, without links.
    let (subject, body) = mail.to_requester();
    mailer.mail(&requester, &subject, &body).await?;
    Ok(GateOpened {
        requested: others.len(),
        required: stored.required,
        expires_at: stored.expires_at,
        attempt: stored.attempt,
    })
}

/// This run's gate attempt: the stored one when the same waiting task asks
/// again, else a new one (conditionally written over any earlier attempt).
async fn open_attempt(
    question: &Question,
    execution: &str,
    task_token: &str,
    requester: &str,
    votes: &impl Votes,
    now: u64,
) -> Result<ApprovalRequest, ApprovalError> {
    let approval = &question.approval;
    let token_hash = sha256_hex(task_token);
    let previous = match votes.request(execution).await? {
        // The same waiting task asking again (a retried invocation): same attempt, same links.
        Some(r) if r.token_hash == token_hash && r.status == status::PENDING => return Ok(r),
        // A new gate: a first one, a redriven run, or an execution name used
        // again. Earlier votes and links belong to the earlier attempt.
        previous => previous,
    };
    let stored = ApprovalRequest {
        execution: execution.to_string(),
        attempt: new_attempt()?,
        action: question.action,
        token_hash,
        tenant: question.tenant.clone(),
        environment: question.environment.clone(),
        image: question.image.clone(),
        tenants: question.tenants(),
        waves: question.waves.clone(),
        evidence: question.evidence.clone(),
        requested_by: requester.to_string(),
        approvers: approval
            .approvers
            .iter()
            .filter_map(|a| identity::canonical("", a).ok())
            .collect(),
        required: approval.approvals_required,
        status: status::PENDING.into(),
        expires_at: now + approval.timeout_seconds,
    };
    if !votes
        .open(&stored, previous.as_ref().map(|p| p.attempt.as_str()))
        .await?
    {
        return Err(ApprovalError::Validation(
            "another invocation opened this run's gate at the same moment; the state machine retries"
                .into(),
        ));
    }
    Ok(stored)
}

/// A fresh gate-attempt id: 128 random bits, hex.
fn new_attempt() -> Result<String, ApprovalError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        ApprovalError::Validation(format!("no randomness for the gate attempt: {e}"))
    })?;
    Ok(hex::encode(bytes))
}

/// What the mails of one gate attempt say.
struct Mail<'a> {
    stored: &'a ApprovalRequest,
    /// A rollout's waves (empty otherwise), listed in the mail.
    waves: &'a [Vec<String>],
    execution: &'a str,
    requester: &'a str,
    /// The approvers mailed links: everyone on the list but the requester.
    others: &'a [&'a String],
    /// When the links die, for people (UTC to the minute, and how far off).
    expires: String,
}

impl Mail<'_> {
    /// The body of `approver`'s mail, with their own two links.
    fn to_approver(&self, approver: &str, key: &SigningKey, base_url: &str) -> String {
        let stored = self.stored;
        let link = |decision| Link {
            execution: self.execution.to_string(),
            attempt: stored.attempt.clone(),
            key_id: key.id.clone(),
            approver: approver.to_string(),
            decision,
            expires: stored.expires_at,
        };
        let region = self.execution.split(':').nth(3).unwrap_or("eu-west-1");
        let removal = if stored.action == Action::Rollout {
            let waves: String = self
                .waves
                .iter()
                .zip(1..)
                .map(|(tenants, n)| format!("  wave {n}: {}\n", tenants.join(", ")))
                .collect();
            format!(
                "\nOne approval covers every deployment of this rollout; its runs do not ask again, and each deploys only its listed tenant at this image.\n{waves}"
            )
        } else if stored.action == Action::Teardown {
            format!(
                "\nRemoving deletes the tenant's service, listener rule, target group, DNS record and config document. \
                 Its database is kept (renamed) and its secret can be restored for {} days; see docs/operating.md, \"Removing a tenant from prod, and restoring it\".\n",
                stepdeploy_shared::config::RETENTION_DAYS
            )
        } else {
            String::new()
        };
        let evidence: String = stored.evidence.iter().map(|l| format!("{l}\n")).collect();
        format!(
            "{requester} asks to {what}.\n{removal}\n{evidence}Image: {image}\nApprovals needed: {n} of the {total} approvers other than the requester (distinct people; the requester cannot approve)\nExecution: {execution}\nConsole: https://console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution}\n\nApprove: {base}/?{approve}\nReject:  {base}/?{reject}\n\nEach link is yours alone, works once, belongs to this request only and expires at {expires}. Opening it shows a confirmation page; nothing is decided until you confirm.\n",
            requester = self.requester,
            what = question(stored.action, &stored.tenant, &stored.environment),
            image = stored.image,
            n = stored.required,
            total = self.others.len(),
            execution = self.execution,
            base = base_url.trim_end_matches('/'),
            approve = query(&key.bytes, &link(Decision::Approve)),
            reject = query(&key.bytes, &link(Decision::Reject)),
            expires = self.expires,
        )
    }

    /// The requester's subject and body: where their request stands.
    fn to_requester(&self) -> (String, String) {
        let stored = self.stored;
        let what = question(stored.action, &stored.tenant, &stored.environment);
        let names: Vec<&str> = self.others.iter().map(|a| a.as_str()).collect();
        (
            stepdeploy_shared::names::sns_subject(&format!("Waiting for approval: {what}")),
            format!(
                "Your request to {what} waits for {n} approval(s) from: {list}.\nYou cannot approve your own request, so you get no links.\nExecution: {execution}\n",
                n = stored.required,
                list = names.join(", "),
                execution = self.execution,
            ),
        )
    }
}

/// SNS subjects must be under 100 characters; an image with a digest is
/// longer than that, so the image is shortened (the body has it whole).
pub fn mail_subject(action: Action, tenant: &str, env: &str, image: &str) -> String {
    const MAX: usize = 99;
    if action == Action::Teardown {
        return stepdeploy_shared::names::sns_subject(&format!("Remove {tenant} from {env}?"));
    }
    if action == Action::Rollout {
        return stepdeploy_shared::names::sns_subject(&format!(
            "Approve rollout to {tenant} of {env}?"
        ));
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
