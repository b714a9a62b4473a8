//! Step 2: the task definition, registered only when its fingerprint changed.

use super::{tags, Recorder};
use crate::error::EcsError;
use crate::ports::{TaskDefinitionState, TaskDefinitions};
use crate::spec::TaskSpec;
use stepdeploy_shared::ledger::LedgerKind;
use stepdeploy_shared::retry::create_or_adopt;
use stepdeploy_shared::state::StateStore;
use stepdeploy_shared::DeploymentPlan;

/// The ARN of the family's revision that matches `spec`: `current` (the
/// family's latest) if its fingerprint is the spec's, else a new revision,
/// recorded with `current` as the one to go back to.
pub async fn ensure_task_definition(
    ecs: &impl TaskDefinitions,
    plan: &DeploymentPlan,
    spec: &TaskSpec,
    current: Option<TaskDefinitionState>,
    rec: &mut Recorder<'_, impl StateStore>,
) -> Result<String, EcsError> {
    let family = &plan.names.task_family;
    let fingerprint = spec.fingerprint();
    let matches =
        |td: &TaskDefinitionState| td.fingerprint.as_deref() == Some(fingerprint.as_str());
    let previous = match current {
        Some(td) if matches(&td) => return Ok(td.arn),
        previous => previous.map(|p| p.arn),
    };
    rec.write_ahead(LedgerKind::TaskDefinition, family, true, previous)
        .await?;
    let tags = tags(plan);
    let arn = create_or_adopt(
        || ecs.register_task_definition(spec, &tags),
        || async {
            Ok(ecs
                .current_task_definition(family)
                .await?
                .filter(matches)
                .map(|td| td.arn))
        },
    )
    .await?;
    rec.changed(LedgerKind::TaskDefinition, &arn, true);
    Ok(arn)
}
