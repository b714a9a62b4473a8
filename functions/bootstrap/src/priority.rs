//! The tenant's ALB rule priority: kept when it has one, else the lowest
//! free one in the environment's range, claimed with a conditional write.
//!
//! An environment with several load balancers gives each a range of its own:
//! a tenant stays on the load balancer its priority (registered, requested
//! or live) is in; a new tenant goes to the first load balancer with room.

use crate::error::BootstrapError;
use crate::ports::{ListenerRule, ListenerRules};
use stepdeploy_shared::config::{EnvironmentConfig, LOAD_BALANCER_TENANTS};
use stepdeploy_shared::ledger::{LedgerEntry, LedgerKind};
use stepdeploy_shared::state::{ClaimOutcome, StateStore};
use stepdeploy_shared::{DeployRequest, ResourceNames};

/// Who holds a rule, for messages.
fn holder_of(rule: &ListenerRule) -> String {
    if rule.hosts.is_empty() {
        format!("rule {}", rule.arn)
    } else {
        format!("rule for {}", rule.hosts.join(", "))
    }
}

/// Picks and claims the tenant's priority on the environment's load
/// balancers (see the module header).
pub async fn reserve_priority(
    request: &DeployRequest,
    env: &EnvironmentConfig,
    names: &ResourceNames,
    execution: &str,
    state: &impl StateStore,
    listener: &impl ListenerRules,
) -> Result<u32, BootstrapError> {
    let balancers = env.load_balancers();
    if balancers.len() == 1 {
        return reserve_on(request, env, names, execution, state, listener).await;
    }
    let views: Vec<EnvironmentConfig> = balancers
        .iter()
        .map(|lb| env.on_load_balancer(lb))
        .collect();
    // Where the tenant is (or asks to be): that load balancer and no other.
    let known = match request.alb_priority {
        Some(priority) => Some(priority),
        None => state.tenant_priority(request.tenant.as_str()).await?,
    };
    if let Some(view) = known.and_then(|p| views.iter().find(|v| v.alb_priority_range.contains(p)))
    {
        return reserve_on(request, view, names, execution, state, listener).await;
    }
    for view in &views {
        let rules = listener.rules(&view.alb_listener_arn).await?;
        if rules
            .iter()
            .any(|r| r.hosts.iter().any(|h| h == &names.host))
        {
            return reserve_on(request, view, names, execution, state, listener).await;
        }
    }
    // A new tenant: the first load balancer with room.
    let mut used = 0;
    for view in &views {
        match reserve_on(request, view, names, execution, state, listener).await {
            Err(BootstrapError::EnvironmentFull { rules, .. }) => used += rules,
            Err(BootstrapError::PriorityExhausted { .. }) => {
                used += (view.alb_priority_range.max - view.alb_priority_range.min + 1) as usize
            }
            other => return other,
        }
    }
    Err(BootstrapError::EnvironmentFull {
        environment: env.name.to_string(),
        tenant: request.tenant.to_string(),
        rules: used,
        quota: env.capacity(),
    })
}

/// Picks and claims the tenant's priority on `env`'s (first) load balancer.
/// Claims are conditional writes, so two runs for different tenants can
/// never end up with the same priority.
async fn reserve_on(
    request: &DeployRequest,
    env: &EnvironmentConfig,
    names: &ResourceNames,
    execution: &str,
    state: &impl StateStore,
    listener: &impl ListenerRules,
) -> Result<u32, BootstrapError> {
    let tenant = request.tenant.as_str();
    let rules = listener.rules(&env.alb_listener_arn).await?;
    let live_at = |p: u32| rules.iter().find(|r| r.priority == Some(p));
    let ours = |rule: &ListenerRule| rule.hosts.iter().any(|h| h == &names.host);
    let in_use = |priority: u32, holder: String| BootstrapError::PriorityInUse {
        priority,
        holder,
        environment: env.name.to_string(),
    };

    let claim = |priority: u32| async move {
        let entry = LedgerEntry {
            kind: LedgerKind::PriorityClaim,
            id: priority.to_string(),
            created: true,
            phase: "bootstrap".into(),
            previous: None,
        };
        let mut outcome = state.claim_priority(priority, tenant, execution).await?;
        if outcome == ClaimOutcome::ClaimedEarlier {
            // An earlier attempt of this run claimed it; record it unless that attempt did.
            outcome = ClaimOutcome::Claimed;
            if state.ledger(execution).await?.contains(&entry) {
                return Ok(outcome);
            }
        }
        // No rollback runs after a failed bootstrap: if this write fails,
        // lock::claim gives the claim back (release_claim_of); should that fail
        // too, a retried bootstrap finds the claim made by this run and
        // records it then (ClaimOutcome::ClaimedEarlier).
        if outcome == ClaimOutcome::Claimed {
            state.record(execution, &entry).await?;
        }
        Ok::<ClaimOutcome, BootstrapError>(outcome)
    };

    // A tenant without a rule adds one rule and one target group to the load
    // balancer: refuse here, before anything is made, when it has no room
    // (ecs's CreateRule would fail with TooManyRules, or CreateTargetGroup's
    // attachment with TooManyTargetGroups, after the run created things).
    // (Read once, and only for a tenant without a rule: a re-deploy reads no claims.)
    let mut claimed = None;
    let mut registered = None;
    if !rules.iter().any(ours) {
        let claimed = claimed.insert(state.claimed_priorities().await?);
        let registered = *registered.insert(state.tenant_priority(tenant).await?);
        let mut occupied: Vec<u32> = rules.iter().filter_map(|r| r.priority).collect();
        // Claims count against the load balancer whose range they are in.
        let range = env.alb_priority_range;
        occupied.extend(
            claimed
                .iter()
                .filter(|p| range.contains(**p) && Some(**p) != registered),
        );
        occupied.sort_unstable();
        occupied.dedup();
        if occupied.len() >= LOAD_BALANCER_TENANTS as usize {
            return Err(BootstrapError::EnvironmentFull {
                environment: env.name.to_string(),
                tenant: tenant.to_string(),
                rules: occupied.len(),
                quota: LOAD_BALANCER_TENANTS,
            });
        }
    }

    if let Some(priority) = request.alb_priority {
        if let Some(rule) = live_at(priority).filter(|r| !ours(r)) {
            return Err(in_use(priority, holder_of(rule)));
        }
        return match claim(priority).await? {
            ClaimOutcome::Claimed | ClaimOutcome::ClaimedEarlier | ClaimOutcome::AlreadyOurs => {
                Ok(priority)
            }
            ClaimOutcome::TakenBy(other) => Err(in_use(priority, format!("tenant {other}"))),
        };
    }

    // Keep what the tenant already has: its registry entry, else its live rule.
    let registered = match registered {
        Some(registered) => registered,
        None => state.tenant_priority(tenant).await?,
    };
    let live = rules.iter().find(|r| ours(r)).and_then(|r| r.priority);
    for priority in [registered, live].into_iter().flatten() {
        let free_or_ours = live_at(priority).is_none_or(ours);
        if env.alb_priority_range.contains(priority) && free_or_ours {
            if let ClaimOutcome::Claimed
            | ClaimOutcome::ClaimedEarlier
            | ClaimOutcome::AlreadyOurs = claim(priority).await?
            {
                return Ok(priority);
            }
        }
    }

    // The lowest priority with neither a rule nor a claim. The claims are read
    // once (one query), so the cost does not grow with the tenants; a claim
    // made since is caught by the conditional write and the next is tried.
    let range = env.alb_priority_range;
    let claimed = match claimed {
        Some(claimed) => claimed,
        None => state.claimed_priorities().await?,
    };
    let free = (range.min..=range.max).filter(|p| live_at(*p).is_none() && !claimed.contains(p));
    for priority in free {
        match claim(priority).await? {
            ClaimOutcome::Claimed | ClaimOutcome::ClaimedEarlier | ClaimOutcome::AlreadyOurs => {
                return Ok(priority)
            }
            // Claimed by a run whose rule does not exist yet: try the next one.
            ClaimOutcome::TakenBy(_) => continue,
        }
    }
    Err(BootstrapError::PriorityExhausted {
        environment: env.name.to_string(),
        min: range.min,
        max: range.max,
    })
}
