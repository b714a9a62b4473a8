//! ecs's domain logic: converge the tenant's EFS access point, task
//! definition, target group, listener rule and service on the plan, creating
//! or updating, never duplicating. Each resource is one step (see
//! [`crate::steps`]); every change is in the run's ledger before it is made.

use crate::error::EcsError;
use crate::ports::{AccessPoints, EnvPorts, HostRules, Services, TargetGroups, TaskDefinitions};
use crate::spec::TaskSpec;
use crate::steps::{
    ensure_access_point, ensure_listener_rule, ensure_service, ensure_target_group,
    ensure_task_definition, Recorder,
};
use serde::Deserialize;
use stepdeploy_shared::aws::Connect;
use stepdeploy_shared::contract::{DatabaseOutput, EcsOutput};
use stepdeploy_shared::state::StateStore;
use stepdeploy_shared::DeploymentPlan;

/// What the state machine passes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcsInput {
    /// bootstrap's plan.
    pub plan: DeploymentPlan,
    /// database's output: the phase runs after it, so the tenant secret the
    /// task reads exists before the service starts its first task (a task
    /// whose secret is missing fails to start and ECS backs off relaunching).
    pub database: DatabaseOutput,
}

/// Runs the phase for one state machine input.
pub async fn handle<Efs, Ecs, Elb, State>(
    input: EcsInput,
    connector: &impl Connect<EnvPorts<Efs, Ecs, Elb, State>>,
) -> Result<EcsOutput, EcsError>
where
    Efs: AccessPoints,
    Ecs: TaskDefinitions + Services,
    Elb: TargetGroups + HostRules,
    State: StateStore,
{
    let EcsInput { plan, database } = &input;
    let ports = connector.connect(&plan.env).await;
    let (efs, ecs, elb) = (&ports.efs, &ports.ecs, &ports.elb);
    let rec = &mut Recorder::new(&ports.state, &plan.execution);
    let current = ecs.current_task_definition(&plan.names.task_family).await?;
    let access_point = ensure_access_point(efs, plan, current.as_ref(), rec).await?;
    let spec = TaskSpec::for_plan(plan, &access_point.id, &database.secret_arn);
    let task_definition_arn = ensure_task_definition(ecs, plan, &spec, current, rec).await?;
    let target_group_arn = ensure_target_group(elb, plan, rec).await?;
    let listener_rule_arn = ensure_listener_rule(elb, plan, &target_group_arn, rec).await?;
    let service_arn =
        ensure_service(ecs, plan, &task_definition_arn, &target_group_arn, rec).await?;
    Ok(EcsOutput {
        access_point_id: access_point.id,
        task_definition_arn,
        target_group_arn,
        listener_rule_arn,
        service_arn,
        changes: rec.changes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::fake::{plan, Fake, Fault, SECRET};
    use stepdeploy_shared::errors::ErrorName;

    async fn run(fake: &Fake, plan: &DeploymentPlan) -> Result<EcsOutput, EcsError> {
        let database = DatabaseOutput {
            secret_arn: SECRET.into(),
            database: "goldencrust_db".into(),
            username: "goldencrust_user".into(),
            changes: vec![],
            backup: None,
            restored: None,
        };
        let input = EcsInput {
            plan: plan.clone(),
            database,
        };
        handle(input, &fake.connector()).await
    }

    #[tokio::test]
    async fn first_run_creates_everything_once_and_records_it() {
        let fake = Fake::default();
        let out = run(&fake, &plan("wordpress:6.4-apache", 140))
            .await
            .expect("created");
        assert_eq!(
            fake.with(|a| a.mutations.clone()),
            [
                "CreateAccessPoint",
                "RegisterTaskDefinition",
                "CreateTargetGroup",
                "CreateRule",
                "CreateService"
            ]
        );
        let kinds: Vec<String> = fake.entries().iter().map(|e| e.kind.to_string()).collect();
        assert_eq!(
            kinds,
            [
                "efs_access_point",
                "task_definition",
                "target_group",
                "listener_rule",
                "service"
            ]
        );
        assert!(fake.entries().iter().all(|e| e.created && e.phase == "ecs"));
        assert_eq!(out.target_group_arn, "arn:tg/sit-goldencrust-tg");
        assert_eq!(out.service_arn, "arn:service/sit-goldencrust-service");
        assert_eq!(out.changes.len(), 5);
        let rule = fake.with(|a| a.rules[0].clone());
        assert_eq!(
            (rule.priority, rule.hosts),
            (Some(140), vec!["goldencrust.wpsit.kimmyai.io".to_string()])
        );
    }

    const CREATES: [&str; 5] = [
        "CreateAccessPoint",
        "RegisterTaskDefinition",
        "CreateTargetGroup",
        "CreateRule",
        "CreateService",
    ];

    #[tokio::test]
    async fn creates_whose_answers_are_lost_are_adopted_not_repeated() {
        let fake = Fake::default();
        fake.with(|a| {
            for call in CREATES {
                a.faults.insert(call, Fault::Dropped);
            }
        });
        let out = run(&fake, &plan("wordpress:6.4-apache", 140))
            .await
            .expect("every create adopted");
        assert_eq!(
            fake.with(|a| a.mutations.clone()),
            CREATES,
            "each made once"
        );
        assert_eq!(out.changes.len(), 5);
        assert_eq!(fake.entries().len(), 5, "one ledger entry each");
    }

    #[tokio::test]
    async fn every_create_is_in_the_ledger_before_it_is_made() {
        let by_name = [
            ("efs_access_point", "/goldencrust"),
            ("task_definition", "sit-goldencrust"),
            ("target_group", "sit-goldencrust-tg"),
            ("listener_rule", "goldencrust.wpsit.kimmyai.io"),
            ("service", "sit-goldencrust-service"),
        ];
        for (k, call) in CREATES.into_iter().enumerate() {
            let fake = Fake::default();
            fake.with(|a| a.faults.insert(call, Fault::Crash));
            let err = run(&fake, &plan("wordpress:6.4-apache", 140))
                .await
                .expect_err("crashed");
            assert_eq!(err.error_name(), "AwsAccessDenied");
            assert_eq!(
                fake.with(|a| a.mutations.len()),
                k + 1,
                "{call} was applied"
            );
            let entries: Vec<(String, String)> = fake
                .entries()
                .into_iter()
                .map(|e| (e.kind.to_string(), e.id))
                .collect();
            let expected: Vec<(String, String)> = by_name[..=k]
                .iter()
                .map(|(kind, id)| (kind.to_string(), id.to_string()))
                .collect();
            assert_eq!(entries, expected, "rollback can find what {call} made");
        }
    }

    #[tokio::test]
    async fn a_retried_phase_adopts_what_the_crashed_attempt_made() {
        let fake = Fake::default();
        fake.with(|a| a.faults.insert("CreateRule", Fault::Crash));
        run(&fake, &plan("wordpress:6.4-apache", 140))
            .await
            .expect_err("crashed");
        run(&fake, &plan("wordpress:6.4-apache", 140))
            .await
            .expect("the retry converges");
        assert_eq!(fake.with(|a| a.mutations.clone()), CREATES, "nothing twice");
    }

    #[tokio::test]
    async fn rerun_with_nothing_changed_makes_no_changes() {
        let fake = Fake::default();
        let first = run(&fake, &plan("wordpress:6.4-apache", 140))
            .await
            .expect("first");
        let mutations = fake.with(|a| a.mutations.len());
        let second = run(&fake, &plan("wordpress:6.4-apache", 140))
            .await
            .expect("second");
        assert_eq!(
            fake.with(|a| a.mutations.len()),
            mutations,
            "no mutating call on a no-change re-run"
        );
        assert_eq!(fake.entries().len(), 5, "nothing new in the ledger");
        assert!(second.changes.is_empty());
        assert_eq!(
            EcsOutput {
                changes: vec![],
                ..first
            },
            second
        );
    }

    #[tokio::test]
    async fn new_image_registers_a_revision_and_rolls_the_service() {
        let fake = Fake::default();
        let first = run(&fake, &plan("wordpress:6.4-apache", 140))
            .await
            .expect("first");
        let second = run(&fake, &plan("wordpress:6.5-apache", 140))
            .await
            .expect("update");
        assert_ne!(first.task_definition_arn, second.task_definition_arn);
        assert_eq!(
            fake.with(|a| a.mutations[5..].to_vec()),
            ["RegisterTaskDefinition", "UpdateService"]
        );
        let ledger = fake.entries()[5..].to_vec();
        assert_eq!(ledger[0].kind.as_str(), "task_definition");
        assert_eq!(
            ledger[0].previous.as_deref(),
            Some(first.task_definition_arn.as_str())
        );
        assert_eq!(
            (ledger[1].kind.as_str(), ledger[1].created),
            ("service_update", false)
        );
        assert_eq!(
            ledger[1].previous.as_deref(),
            Some(first.task_definition_arn.as_str()),
            "rollback can restore the old revision"
        );
    }

    #[test]
    fn bad_input_is_validation_failed_before_the_handler_runs() {
        let input = stepdeploy_shared::lambda::input::<EcsInput>;
        let err = input(serde_json::json!({"plan": {"tenant": "x"}})).expect_err("bad");
        assert_eq!(err.error_type, "ValidationFailed");
        let p = plan("wordpress:6.4-apache", 140);
        let err = input(serde_json::json!({ "plan": p })).expect_err("bad");
        assert_eq!(err.error_type, "ValidationFailed");
        assert!(
            err.error_message.contains("database"),
            "{}",
            err.error_message
        );
        let database = serde_json::json!({"secret_arn": SECRET, "database": "d", "username": "u", "changes": []});
        input(serde_json::json!({ "plan": p, "database": database })).expect("well-formed");
        let err = input(serde_json::json!({ "plan": p, "database": database, "extra": 1 }))
            .expect_err("unknown field");
        assert_eq!(err.error_type, "ValidationFailed");
    }
}
