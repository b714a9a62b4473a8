//! Requests as users make them: unique tenants and event ids (so tests
//! never share state, even across runs on one stack) and events on the bus.

use crate::clients::orchestrator;
use crate::stack::{ORCHESTRATOR_ACCOUNT, REGION};
use std::sync::atomic::{AtomicU64, Ordering};

fn unique_number() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    nanos
        ^ (u64::from(std::process::id()) << 40)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A tenant name no other test (or earlier run against the same stack) uses: `{prefix}` and digits, 20 characters at most.
pub fn unique_tenant(prefix: &str) -> String {
    format!("{prefix}{}", unique_number())
        .chars()
        .take(20)
        .collect()
}

/// A fresh UUID-shaped event id.
pub fn unique_event_id() -> String {
    let n = unique_number();
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        n >> 32,
        (n >> 16) & 0xffff,
        n & 0xfff,
        (n >> 4) & 0xfff,
        n & 0xffff_ffff_ffff
    )
}

/// An EventBridge event as a rule delivers it.
pub fn event(detail_type: &str, detail: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": unique_event_id(),
        "detail-type": detail_type, "source": "stepdeploy", "account": ORCHESTRATOR_ACCOUNT,
        "time": "2026-11-22T10:00:00Z", "region": REGION, "resources": [], "detail": detail
    })
}

/// Puts a `Tenant Deployment Requested` event with `detail` on the bus, as a user does.
pub async fn put_deploy_event(detail: serde_json::Value) {
    put_event("Tenant Deployment Requested", detail).await;
}

/// Puts a `Tenant Teardown Requested` event with `detail` on the bus.
pub async fn put_teardown_event(detail: serde_json::Value) {
    put_event("Tenant Teardown Requested", detail).await;
}

/// Puts a `detail_type` event from source `stepdeploy` on the bus; every entry accepted.
pub async fn put_event(detail_type: &str, detail: serde_json::Value) {
    let events = aws_sdk_eventbridge::Client::new(&orchestrator().await);
    let out = events
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name("stepdeploy")
                .source("stepdeploy")
                .detail_type(detail_type)
                .detail(detail.to_string())
                .build(),
        )
        .send()
        .await
        .expect("put events");
    assert_eq!(out.failed_entry_count(), 0);
}
