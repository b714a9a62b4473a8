//! Waiting for a busy tenant (`queue` in the environment's config): a
//! request for a tenant another run holds joins the tenant's queue in the
//! state table and tries again every [`POLL_SECONDS`] (the state machine's
//! Wait), first come first served; with `supersede`, a newer request
//! replaces the older waiting ones (they end `Superseded`, having changed
//! nothing). A request that waited `max_wait_seconds` fails with
//! `DeploymentLocked`, as without a queue. Nothing is held while waiting:
//! the lock and the priority are taken by the claim when its turn comes.

use crate::error::BootstrapError;
use stepdeploy_shared::config::{EnvironmentConfig, QueueConfig};
use stepdeploy_shared::plan::{DeploymentPlan, Queued};
use stepdeploy_shared::state::{QueueEntry, StateStore};
use stepdeploy_shared::window::rfc3339_utc;

/// Seconds between two tries of a waiting run.
pub const POLL_SECONDS: u64 = 10;

/// A waiting run not seen trying for this long died (stopped, or ended
/// elsewhere): its entry no longer holds anyone back.
pub const GONE_AFTER_SECONDS: u64 = 6 * POLL_SECONDS;

/// What the queue says about `plan`'s run before it tries the lock.
#[derive(Debug)]
pub enum Turn {
    /// Nobody waiting went first: try the lock.
    Go,
    /// Earlier requests wait: wait behind them.
    Wait(Queued),
}

fn at(epoch: u64) -> String {
    rfc3339_utc(i64::try_from(epoch).unwrap_or(i64::MAX)).unwrap_or_default()
}

/// The run's place: superseded by a newer waiting request (an error),
/// behind older ones, or first.
pub async fn turn(
    plan: &DeploymentPlan,
    queue: &QueueConfig,
    state: &impl StateStore,
    now: u64,
) -> Result<Turn, BootstrapError> {
    let tenant = plan.tenant.as_str();
    let live: Vec<QueueEntry> = state
        .queue(tenant)
        .await?
        .into_iter()
        .filter(|e| e.expires_at > now && e.last_seen + GONE_AFTER_SECONDS >= now)
        .collect();
    let mine = live.iter().find(|e| e.execution == plan.execution);
    let my_time = mine.map_or(now, |e| e.enqueued_at);
    if queue.supersede && mine.is_some() {
        if let Some(newer) = live
            .iter()
            .filter(|e| e.execution != plan.execution)
            .find(|e| (e.enqueued_at, &e.execution) > (my_time, &plan.execution))
        {
            state.dequeue(tenant, &plan.execution).await?;
            return Err(BootstrapError::Superseded {
                tenant: tenant.to_string(),
                environment: plan.environment.to_string(),
                by: newer.execution.clone(),
                requested_by: newer.requested_by.clone(),
            });
        }
    }
    let ahead: Vec<&QueueEntry> = live
        .iter()
        .filter(|e| e.execution != plan.execution)
        .filter(|e| mine.is_none() || (e.enqueued_at, &e.execution) < (my_time, &plan.execution))
        .collect();
    if ahead.is_empty() {
        return Ok(Turn::Go);
    }
    let since = join(plan, queue, state, now).await?;
    Ok(Turn::Wait(Queued {
        wait_until: at(now + POLL_SECONDS),
        behind: ahead[ahead.len() - 1].execution.clone(),
        position: u32::try_from(ahead.len() + 1).unwrap_or(u32::MAX),
        since: at(since),
    }))
}

/// Joins the queue (once); when the run first joined.
async fn join(
    plan: &DeploymentPlan,
    queue: &QueueConfig,
    state: &impl StateStore,
    now: u64,
) -> Result<u64, BootstrapError> {
    let entry = QueueEntry {
        execution: plan.execution.clone(),
        requested_by: plan.requested_by.clone(),
        enqueued_at: now,
        // A run that dies waiting stops counting once it is not seen trying
        // (GONE_AFTER_SECONDS), and at the latest a little after its limit.
        expires_at: now + queue.max_wait_seconds + 2 * POLL_SECONDS,
        last_seen: now,
    };
    Ok(state.enqueue(plan.tenant.as_str(), &entry).await?)
}

/// The lock is held by another run: wait behind it, or give up with the
/// `DeploymentLocked` it answered once the run has waited long enough.
pub async fn behind_the_holder(
    plan: &DeploymentPlan,
    env: &EnvironmentConfig,
    queue: &QueueConfig,
    locked: BootstrapError,
    state: &impl StateStore,
    now: u64,
) -> Result<Queued, BootstrapError> {
    let BootstrapError::Locked { owner, .. } = &locked else {
        return Err(locked);
    };
    let since = join(plan, queue, state, now).await?;
    if now.saturating_sub(since) >= queue.max_wait_seconds {
        state.dequeue(plan.tenant.as_str(), &plan.execution).await?;
        tracing::info!(environment = %env.name, waited = now - since, "gave up waiting for the tenant");
        return Err(locked);
    }
    Ok(Queued {
        wait_until: at(now + POLL_SECONDS),
        behind: owner.clone(),
        position: 1,
        since: at(since),
    })
}
