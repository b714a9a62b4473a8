//! Step 4: the tenant's host-header rule on the shared listener, at the
//! priority bootstrap claimed, forwarding to the tenant's target group.

use super::{tags, Recorder};
use crate::error::EcsError;
use crate::ports::HostRules;
use stepdeploy_shared::ledger::LedgerKind;
use stepdeploy_shared::listener::ListenerRule;
use stepdeploy_shared::retry::create_or_adopt;
use stepdeploy_shared::state::StateStore;
use stepdeploy_shared::DeploymentPlan;

/// The rule's ARN: the rule for the tenant's host, moved and re-pointed if
/// it drifted, or a new one. A priority taken by another rule is
/// [`EcsError::PriorityInUse`].
pub async fn ensure_listener_rule(
    elb: &impl HostRules,
    plan: &DeploymentPlan,
    target_group_arn: &str,
    rec: &mut Recorder<'_, impl StateStore>,
) -> Result<String, EcsError> {
    let host = &plan.names.host;
    let rules = elb.rules(&plan.env.alb_listener_arn).await?;
    match rules.into_iter().find(|r| serves(r, host)) {
        Some(rule) => converge(elb, rule, plan.alb_priority, target_group_arn, rec).await,
        None => create(elb, plan, target_group_arn, rec).await,
    }
}

/// Whether `rule` is the one for `host`.
fn serves(rule: &ListenerRule, host: &str) -> bool {
    rule.hosts.iter().any(|h| h == host)
}

/// A new rule for the tenant's host, recorded under the host (rollback finds it by it).
async fn create(
    elb: &impl HostRules,
    plan: &DeploymentPlan,
    target_group_arn: &str,
    rec: &mut Recorder<'_, impl StateStore>,
) -> Result<String, EcsError> {
    let (listener, host, priority) = (
        &plan.env.alb_listener_arn,
        &plan.names.host,
        plan.alb_priority,
    );
    rec.write_ahead(LedgerKind::ListenerRule, host, true, None)
        .await?;
    let tags = tags(plan);
    let arn = create_or_adopt(
        || elb.create_rule(listener, priority, host, target_group_arn, &tags),
        || async {
            let rules = elb.rules(listener).await?;
            Ok(rules
                .into_iter()
                .find(|r| serves(r, host))
                .map(|r| Some(r.arn)))
        },
    )
    .await?
    .ok_or(EcsError::PriorityInUse { priority })?;
    rec.changed(LedgerKind::ListenerRule, &arn, true);
    Ok(arn)
}

/// The tenant's rule put back on `priority` and `target_group_arn` if it
/// drifted, after recording the values to restore.
async fn converge(
    elb: &impl HostRules,
    rule: ListenerRule,
    priority: u32,
    target_group_arn: &str,
    rec: &mut Recorder<'_, impl StateStore>,
) -> Result<String, EcsError> {
    let move_it = rule.priority != Some(priority);
    let point_it = rule.target_groups != [target_group_arn];
    if !move_it && !point_it {
        return Ok(rule.arn);
    }
    let previous = format!(
        "priority={};target_group={}",
        rule.priority.map(|p| p.to_string()).unwrap_or_default(),
        rule.target_groups.join(",")
    );
    rec.write_ahead(
        LedgerKind::ListenerRuleUpdate,
        &rule.arn,
        false,
        Some(previous),
    )
    .await?;
    if move_it && !elb.set_rule_priority(&rule.arn, priority).await? {
        return Err(EcsError::PriorityInUse { priority });
    }
    if point_it {
        elb.forward_rule(&rule.arn, target_group_arn).await?;
    }
    rec.changed(LedgerKind::ListenerRuleUpdate, &rule.arn, false);
    Ok(rule.arn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::fake::{plan, Fake};

    const TG: &str = "arn:tg/sit-goldencrust-tg";

    fn rule(arn: &str, priority: u32, host: &str, target_group: &str) -> ListenerRule {
        ListenerRule {
            arn: arn.into(),
            priority: Some(priority),
            hosts: vec![host.into()],
            target_groups: vec![target_group.into()],
        }
    }

    #[tokio::test]
    async fn drifted_rule_is_put_back_and_recorded_as_an_update() {
        let fake = Fake::default();
        fake.with(|a| {
            a.rules
                .push(rule("arn:rule/140", 99, "goldencrust.wpsit.kimmyai.io", TG))
        });
        let mut rec = Recorder::new(&fake.1, "run");
        let arn = ensure_listener_rule(&fake, &plan("wordpress:6.4-apache", 140), TG, &mut rec)
            .await
            .expect("converged");
        assert_eq!(arn, "arn:rule/140");
        assert_eq!(fake.with(|a| a.rules[0].priority), Some(140));
        assert_eq!(fake.with(|a| a.mutations.clone()), ["SetRulePriorities"]);
        let last = fake.entries().last().cloned().expect("entry");
        assert_eq!(
            (last.kind.as_str(), last.created),
            ("listener_rule_update", false)
        );
        assert_eq!(
            last.previous.as_deref(),
            Some("priority=99;target_group=arn:tg/sit-goldencrust-tg")
        );
        assert_eq!(rec.changes(), ["updated listener_rule_update arn:rule/140"]);
    }

    #[tokio::test]
    async fn taken_priority_fails_with_priority_in_use() {
        use stepdeploy_shared::errors::ErrorName;
        let fake = Fake::default();
        fake.with(|a| {
            a.rules
                .push(rule("arn:other", 140, "other.wpsit.kimmyai.io", ""))
        });
        let mut rec = Recorder::new(&fake.1, "run");
        let err = ensure_listener_rule(&fake, &plan("wordpress:6.4-apache", 140), TG, &mut rec)
            .await
            .expect_err("taken");
        assert_eq!(err.error_name(), "PriorityInUse");
        assert_eq!(
            fake.entries().len(),
            1,
            "the create was recorded before it was tried"
        );
    }
}
