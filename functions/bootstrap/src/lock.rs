//! The tenant's lock and its ALB priority, taken together by the claim: a
//! run that gets the lock but not a priority gives both back, since no
//! rollback will know about a run that never produced a plan.

use crate::error::BootstrapError;
use crate::ports::{EnvPorts, ListenerRules};
use crate::priority::reserve_priority;
use crate::queue::{behind_the_holder, turn, Turn};
use stepdeploy_shared::config::EnvironmentConfig;
use stepdeploy_shared::plan::DeploymentPlan;
use stepdeploy_shared::state::{LockOutcome, StateStore};
use stepdeploy_shared::DeployRequest;

/// Seconds since the epoch; injected so tests control lock expiry.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> u64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    }
}

/// How long a run may hold its lock: long enough for the approval gate and
/// the verify loop, after which a crashed run's lock can be taken over.
pub fn lock_ttl(env: &EnvironmentConfig) -> u64 {
    let approval = env.approval.as_ref().map_or(0, |a| a.timeout_seconds);
    let verify = if env.verify.enabled {
        u64::from(env.verify.interval_seconds) * u64::from(env.verify.max_attempts)
    } else {
        0
    };
    approval + verify + 3_600
}

/// Takes the tenant's lock and its ALB priority for `plan`.
pub async fn claim<S: StateStore, L: ListenerRules, B>(
    mut plan: DeploymentPlan,
    env: &EnvironmentConfig,
    ports: &EnvPorts<S, L, B>,
    clock: &impl Clock,
) -> Result<DeploymentPlan, BootstrapError> {
    let tenant = plan.tenant.as_str().to_string();
    let tenant = tenant.as_str();
    let execution = plan.execution.clone();
    plan.queued = None;
    if let Some(queue) = &env.queue {
        // Earlier requests go first; a newer one may replace this one.
        if let Turn::Wait(queued) = turn(&plan, queue, &ports.state, clock.now()).await? {
            plan.queued = Some(queued);
            return Ok(plan);
        }
    }
    match take_lock(&plan, env, &ports.state, clock).await {
        Ok(()) => {
            if env.queue.is_some() {
                ports.state.dequeue(tenant, &execution).await?;
            }
        }
        Err(locked @ BootstrapError::Locked { .. }) => match &env.queue {
            Some(queue) => {
                let queued =
                    behind_the_holder(&plan, env, queue, locked, &ports.state, clock.now()).await?;
                plan.queued = Some(queued);
                return Ok(plan);
            }
            None => return Err(locked),
        },
        Err(other) => return Err(other),
    }
    let request = DeployRequest {
        tenant: plan.tenant.clone(),
        environment: plan.environment.clone(),
        image: Some(plan.image.clone()),
        alb_priority: (plan.alb_priority != 0).then_some(plan.alb_priority),
        auto_promote: plan.auto_promote,
        requested_by: plan.requested_by.clone(),
        request_id: None,
        labels: None,
        rollout: None,
        restore: None,
        window_override: None,
    };
    // From here on this run holds the lock: give it back if bootstrap fails,
    // since no rollback will know about a run that never produced a plan.
    match reserve_priority(
        &request,
        env,
        &plan.names,
        &execution,
        &ports.state,
        &ports.rules,
    )
    .await
    {
        Ok(alb_priority) => {
            plan.alb_priority = alb_priority;
            // The phases act on the load balancer the priority belongs to.
            plan.env = env.in_plan(alb_priority);
            Ok(plan)
        }
        Err(err) => {
            // Also a claim whose answer was lost, or whose ledger entry could
            // not be written: found through the registry, released if this
            // run made it.
            if let Err(release) = ports.state.release_claim_of(tenant, &execution).await {
                tracing::error!(error = %release, "could not give back the priority claim of a failed bootstrap");
            }
            if let Err(release) = ports.state.release_lock(tenant, &execution).await {
                tracing::error!(error = %release, "could not release the lock after a failed bootstrap; it expires by itself");
            }
            Err(err)
        }
    }
}

/// The tenant's lock for `plan`'s run, or `Locked` naming who holds it.
async fn take_lock(
    plan: &DeploymentPlan,
    env: &EnvironmentConfig,
    state: &impl StateStore,
    clock: &impl Clock,
) -> Result<(), BootstrapError> {
    let now = clock.now();
    let tenant = plan.tenant.as_str();
    let execution = &plan.execution;
    let locked = state
        .acquire_lock(
            tenant,
            execution,
            &plan.requested_by,
            now,
            now + lock_ttl(env),
        )
        .await;
    let locked = match locked {
        Ok(outcome) => outcome,
        Err(err) => {
            // The put may have been applied before the error (a lost answer,
            // then a failed retry): the release is conditional on this run.
            if let Err(release) = state.release_lock(tenant, execution).await {
                tracing::error!(error = %release, "could not release the lock after a failed bootstrap; it expires by itself");
            }
            return Err(err.into());
        }
    };
    match locked {
        LockOutcome::Acquired => Ok(()),
        LockOutcome::HeldBy(holder) => Err(BootstrapError::Locked {
            tenant: tenant.to_string(),
            environment: env.name.to_string(),
            owner: holder.owner,
            requested_by: holder.requested_by,
            expires_at: holder.expires_at,
            now,
        }),
    }
}
