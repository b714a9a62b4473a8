//! Step 3: the tenant's target group, with stepdeploy's health check.

use super::{tags, Recorder};
use crate::error::EcsError;
use crate::ports::{TargetGroups, HEALTH_CHECK_PATH, MATCHER};
use stepdeploy_shared::ledger::LedgerKind;
use stepdeploy_shared::retry::create_or_adopt;
use stepdeploy_shared::state::StateStore;
use stepdeploy_shared::DeploymentPlan;

/// The target group's ARN: found (its health check put back if it drifted)
/// or created.
pub async fn ensure_target_group(
    elb: &impl TargetGroups,
    plan: &DeploymentPlan,
    rec: &mut Recorder<'_, impl StateStore>,
) -> Result<String, EcsError> {
    let name = &plan.names.target_group;
    if let Some(tg) = elb.find_target_group(name).await? {
        if tg.matcher.as_deref() != Some(MATCHER)
            || tg.health_check_path.as_deref() != Some(HEALTH_CHECK_PATH)
        {
            elb.fix_health_check(&tg.arn).await?;
            rec.note(format!("updated health check of {}", tg.arn));
        }
        return Ok(tg.arn);
    }
    rec.write_ahead(LedgerKind::TargetGroup, name, true, None)
        .await?;
    let tags = tags(plan);
    let arn = create_or_adopt(
        || elb.create_target_group(name, &plan.env.vpc_id, &tags),
        || async { Ok(elb.find_target_group(name).await?.map(|tg| tg.arn)) },
    )
    .await?;
    rec.changed(LedgerKind::TargetGroup, &arn, true);
    Ok(arn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::fake::{plan, Fake};

    #[tokio::test]
    async fn a_drifted_health_check_is_put_back_without_a_ledger_entry() {
        let fake = Fake::default();
        let p = plan("wordpress:6.4-apache", 140);
        let mut rec = Recorder::new(&fake.1, "run");
        let arn = ensure_target_group(&fake, &p, &mut rec)
            .await
            .expect("created");
        fake.with(|a| a.target_groups[0].1.matcher = Some("200".into()));
        let again = ensure_target_group(&fake, &p, &mut rec)
            .await
            .expect("found");
        assert_eq!(again, arn);
        assert_eq!(
            fake.with(|a| a.mutations.clone()),
            ["CreateTargetGroup", &format!("ModifyTargetGroup {arn}")]
        );
        assert_eq!(fake.entries().len(), 1, "only the create");
        assert_eq!(
            rec.changes(),
            [
                format!("created target_group {arn}"),
                format!("updated health check of {arn}")
            ]
        );
    }
}
