//! The approval gate from an approver's side: the mails (SNS → the
//! approvals inbox queue) and their links.

use crate::clients::orchestrator;
use std::process::Command;
use std::time::{Duration, Instant};

/// (approver, approve link, reject link) mailed for `tenant` (read from the approvals inbox, SNS → SQS), sorted by approver.
pub async fn approval_links(tenant: &str, approvers: usize) -> Vec<(String, String, String)> {
    let (deploy, remove) = (
        format!("deploy {tenant} to"),
        format!("remove {tenant} from"),
    );
    mailed_links(tenant, approvers, |text| {
        text.contains(&deploy) || text.contains(&remove)
    })
    .await
}

/// (approver, approve link, reject link) of the mails that mention `needle`
/// (a rollout's execution name), sorted by approver.
pub async fn approval_links_mentioning(
    needle: &str,
    approvers: usize,
) -> Vec<(String, String, String)> {
    mailed_links(needle, approvers, |text| text.contains(needle)).await
}

async fn mailed_links(
    what: &str,
    approvers: usize,
    ours: impl Fn(&str) -> bool,
) -> Vec<(String, String, String)> {
    let tenant = what;
    let sqs = aws_sdk_sqs::Client::new(&orchestrator().await);
    let queue = sqs
        .get_queue_url()
        .queue_name("stepdeploy-approvals-inbox")
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut found = Vec::new();
    while found.len() < approvers {
        assert!(
            Instant::now() < deadline,
            "only {} approval mails for {tenant}",
            found.len()
        );
        let out = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        for message in out.messages() {
            let envelope: serde_json::Value =
                serde_json::from_str(message.body().unwrap_or("{}")).expect("sns envelope");
            let text = envelope["Message"].as_str().unwrap_or_default();
            if !ours(text) {
                // Another test's mail: give it back at once (receiving hid it
                // for the queue's visibility timeout; tests reading the same
                // inbox in parallel could otherwise starve each other).
                let _ = sqs
                    .change_message_visibility()
                    .queue_url(&queue)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .visibility_timeout(0)
                    .send()
                    .await;
                continue;
            }
            sqs.delete_message()
                .queue_url(&queue)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
            if !text.contains("Approve:") {
                // The requester's notice: no links in it.
                assert!(text.contains("cannot approve your own"), "{text}");
                continue;
            }
            let approver = envelope["MessageAttributes"]["approver"]["Value"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let line = |prefix: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(prefix))
                    .map(|l| l.trim().to_string())
                    .expect("link line")
            };
            assert!(
                !text.contains("task_token") && !text.contains("AAAA"),
                "no task token in mails"
            );
            found.push((approver, line("Approve:"), line("Reject:")));
        }
    }
    found.sort();
    found
}

/// (status, body) of a GET of `url`.
pub fn get(url: &str) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", url])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (status.to_string(), body.to_string())
}

/// (status, body) of the POST the confirmation page makes.
pub fn post(url: &str, reason: &str) -> (String, String) {
    let (base, query) = url.split_once('?').expect("query");
    let out = Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "-X",
            "POST",
            "-H",
            "content-type: application/x-www-form-urlencoded",
            "--data",
            &format!("{query}&reason={reason}"),
            base,
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (status.to_string(), body.to_string())
}
