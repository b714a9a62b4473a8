//! Step 5: the tenant's Fargate service, running the task definition.

use super::{tags, Recorder};
use crate::error::EcsError;
use crate::ports::{ServiceSpec, Services};
use stepdeploy_shared::ledger::LedgerKind;
use stepdeploy_shared::retry::create_or_adopt;
use stepdeploy_shared::state::StateStore;
use stepdeploy_shared::DeploymentPlan;

/// The service's ARN: an existing one rolled to `task_definition_arn` if it
/// runs another, else (none, or only an `INACTIVE` one) a new one behind
/// `target_group_arn`.
pub async fn ensure_service(
    ecs: &impl Services,
    plan: &DeploymentPlan,
    task_definition_arn: &str,
    target_group_arn: &str,
    rec: &mut Recorder<'_, impl StateStore>,
) -> Result<String, EcsError> {
    let (env, name) = (&plan.env, &plan.names.service);
    match ecs.find_service(&env.cluster, name).await? {
        Some(service) if service.status != "INACTIVE" => {
            if service.task_definition != task_definition_arn {
                let previous = Some(service.task_definition);
                rec.write_ahead(LedgerKind::ServiceUpdate, &service.arn, false, previous)
                    .await?;
                ecs.update_service(&env.cluster, name, task_definition_arn)
                    .await?;
                rec.changed(LedgerKind::ServiceUpdate, &service.arn, false);
            }
            Ok(service.arn)
        }
        _ => {
            let spec = ServiceSpec {
                cluster: env.cluster.clone(),
                name: name.clone(),
                task_definition: task_definition_arn.into(),
                target_group_arn: target_group_arn.into(),
                subnets: env.private_subnets.clone(),
                security_group: env.ecs_security_group.clone(),
            };
            rec.write_ahead(LedgerKind::Service, name, true, None)
                .await?;
            let tags = tags(plan);
            let arn = create_or_adopt(
                || ecs.create_service(&spec, &tags),
                || async {
                    Ok(ecs
                        .find_service(&env.cluster, name)
                        .await?
                        .filter(|s| s.status == "ACTIVE")
                        .map(|s| s.arn))
                },
            )
            .await?;
            rec.changed(LedgerKind::Service, &arn, true);
            Ok(arn)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::fake::{plan, Fake};

    #[tokio::test]
    async fn an_inactive_service_is_created_again() {
        let fake = Fake::default();
        let p = plan("wordpress:6.4-apache", 140);
        let mut rec = Recorder::new(&fake.1, "run");
        ensure_service(&fake, &p, "arn:td:1", "arn:tg", &mut rec)
            .await
            .expect("created");
        fake.with(|a| a.services[0].1.status = "INACTIVE".into());
        ensure_service(&fake, &p, "arn:td:1", "arn:tg", &mut rec)
            .await
            .expect("created again");
        assert_eq!(
            fake.with(|a| a.mutations.clone()),
            ["CreateService", "CreateService"]
        );
        let kinds: Vec<_> = fake.entries().iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["service", "service"]);
    }
}
