//! ecs's domain logic: converge the tenant's EFS access point, task
//! definition, target group, listener rule and service on the plan, creating
//! or updating, never duplicating.
//!
//! Each change is written to the run's ledger *before* it is made (a
//! write-ahead entry): a create under the name rollback finds the resource by
//! (access point path, task definition family with the revision before,
//! target group name, rule host, service name), an update with the value to
//! put back. So a run that dies between a create and anything after it, or
//! whose create was applied but answered with an error, still rolls back
//! everything it made. Creates go through
//! [`create_or_adopt`](stepdeploy_shared::retry::create_or_adopt): a create
//! whose answer was lost is found by name and adopted, never made twice.

use crate::error::EcsError;
use crate::ports::{Connector, Platform, ServiceSpec, Tags, HEALTH_CHECK_PATH, MATCHER};
use crate::spec::TaskSpec;
use serde::Deserialize;
use stepdeploy_shared::contract::{DatabaseOutput, EcsOutput};
use stepdeploy_shared::ledger::{LedgerEntry, LedgerKind};
use stepdeploy_shared::retry::create_or_adopt;
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

fn tags(plan: &DeploymentPlan) -> Tags {
    vec![
        ("Tenant".into(), plan.tenant.to_string()),
        ("Environment".into(), plan.environment.to_string()),
        ("ManagedBy".into(), "stepdeploy".into()),
    ]
}

struct Recorder<'a, S> {
    state: &'a S,
    execution: &'a str,
    changes: Vec<String>,
}

impl<S: StateStore> Recorder<'_, S> {
    /// Writes the ledger entry for a change about to be made.
    async fn intend(
        &mut self,
        kind: LedgerKind,
        id: &str,
        created: bool,
        previous: Option<String>,
    ) -> Result<(), EcsError> {
        self.state
            .record(
                self.execution,
                &LedgerEntry {
                    kind,
                    id: id.into(),
                    created,
                    phase: "ecs".into(),
                    previous,
                },
            )
            .await?;
        Ok(())
    }

    /// Notes a change made, for the output.
    fn done(&mut self, kind: LedgerKind, id: &str, created: bool) {
        self.changes.push(format!(
            "{} {kind} {id}",
            if created { "created" } else { "updated" }
        ));
    }
}

/// EFS's idempotency token for this run's access point: the same for every
/// attempt of the run (an answered repeat returns the same access point),
/// another for the next run (a token is not reused after a rollback).
fn client_token(tenant: &str, execution: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(execution.as_bytes()));
    format!("{tenant}-{}", &digest[..32])
}

/// Runs the phase for one state machine input.
pub async fn handle(
    input: serde_json::Value,
    connector: &impl Connector,
) -> Result<EcsOutput, EcsError> {
    let EcsInput { plan, database } = serde_json::from_value(input)
        .map_err(|e| EcsError::Validation(format!("expected {{plan, database}}: {e}")))?;
    let env = &plan.env;
    let names = &plan.names;
    let tags = tags(&plan);
    let ports = connector.connect(env).await;
    let platform = &ports.platform;
    let mut ledger = Recorder {
        state: &ports.state,
        execution: &plan.execution,
        changes: Vec::new(),
    };

    let current = platform.current_task_definition(&names.task_family).await?;
    let mounted = current
        .as_ref()
        .and_then(|td| td.access_point_id.as_deref());
    let access_point = match platform
        .find_access_point(&env.efs_id, &names.efs_path, mounted)
        .await?
    {
        Some(ap) => ap,
        None => {
            ledger
                .intend(LedgerKind::EfsAccessPoint, &names.efs_path, true, None)
                .await?;
            // The token makes AWS answer a repeated create of this run with
            // the same access point; another run gets its own.
            let token = client_token(&plan.tenant.to_string(), &plan.execution);
            let ap = create_or_adopt(
                || platform.create_access_point(&env.efs_id, &names.efs_path, &token, &tags),
                || platform.find_access_point(&env.efs_id, &names.efs_path, None),
            )
            .await?;
            ledger.done(LedgerKind::EfsAccessPoint, &ap.id, true);
            ap
        }
    };

    let spec = TaskSpec::for_plan(&plan, &access_point.id, &database.secret_arn);
    let fingerprint = spec.fingerprint();
    let task_definition_arn = match current {
        Some(td) if td.fingerprint.as_deref() == Some(fingerprint.as_str()) => td.arn,
        previous => {
            ledger
                .intend(
                    LedgerKind::TaskDefinition,
                    &names.task_family,
                    true,
                    previous.map(|p| p.arn),
                )
                .await?;
            let arn = create_or_adopt(
                || platform.register_task_definition(&spec, &tags),
                || async {
                    Ok(platform
                        .current_task_definition(&names.task_family)
                        .await?
                        .filter(|td| td.fingerprint.as_deref() == Some(fingerprint.as_str()))
                        .map(|td| td.arn))
                },
            )
            .await?;
            ledger.done(LedgerKind::TaskDefinition, &arn, true);
            arn
        }
    };

    let target_group_arn = match platform.find_target_group(&names.target_group).await? {
        Some(tg) => {
            if tg.matcher.as_deref() != Some(MATCHER)
                || tg.health_check_path.as_deref() != Some(HEALTH_CHECK_PATH)
            {
                platform.fix_health_check(&tg.arn).await?;
                ledger
                    .changes
                    .push(format!("updated health check of {}", tg.arn));
            }
            tg.arn
        }
        None => {
            ledger
                .intend(LedgerKind::TargetGroup, &names.target_group, true, None)
                .await?;
            let arn = create_or_adopt(
                || platform.create_target_group(&names.target_group, &env.vpc_id, &tags),
                || async {
                    Ok(platform
                        .find_target_group(&names.target_group)
                        .await?
                        .map(|tg| tg.arn))
                },
            )
            .await?;
            ledger.done(LedgerKind::TargetGroup, &arn, true);
            arn
        }
    };

    let rules = platform.rules(&env.alb_listener_arn).await?;
    let ours = rules
        .iter()
        .find(|r| r.hosts.iter().any(|h| h == &names.host));
    let listener_rule_arn = match ours {
        None => {
            ledger
                .intend(LedgerKind::ListenerRule, &names.host, true, None)
                .await?;
            let arn = create_or_adopt(
                || {
                    platform.create_rule(
                        &env.alb_listener_arn,
                        plan.alb_priority,
                        &names.host,
                        &target_group_arn,
                        &tags,
                    )
                },
                || async {
                    Ok(platform
                        .rules(&env.alb_listener_arn)
                        .await?
                        .into_iter()
                        .find(|r| r.hosts.iter().any(|h| h == &names.host))
                        .map(|r| Some(r.arn)))
                },
            )
            .await?
            .ok_or(EcsError::PriorityInUse {
                priority: plan.alb_priority,
            })?;
            ledger.done(LedgerKind::ListenerRule, &arn, true);
            arn
        }
        Some(rule) => {
            let previous = format!(
                "priority={};target_group={}",
                rule.priority.map(|p| p.to_string()).unwrap_or_default(),
                rule.target_groups.join(",")
            );
            let move_it = rule.priority != Some(plan.alb_priority);
            let point_it = rule.target_groups != [target_group_arn.clone()];
            if move_it || point_it {
                ledger
                    .intend(
                        LedgerKind::ListenerRuleUpdate,
                        &rule.arn,
                        false,
                        Some(previous),
                    )
                    .await?;
            }
            if move_it
                && !platform
                    .set_rule_priority(&rule.arn, plan.alb_priority)
                    .await?
            {
                return Err(EcsError::PriorityInUse {
                    priority: plan.alb_priority,
                });
            }
            if point_it {
                platform.forward_rule(&rule.arn, &target_group_arn).await?;
            }
            if move_it || point_it {
                ledger.done(LedgerKind::ListenerRuleUpdate, &rule.arn, false);
            }
            rule.arn.clone()
        }
    };

    let service_arn = match platform.find_service(&env.cluster, &names.service).await? {
        Some(service) if service.status != "INACTIVE" => {
            if service.task_definition != task_definition_arn {
                ledger
                    .intend(
                        LedgerKind::ServiceUpdate,
                        &service.arn,
                        false,
                        Some(service.task_definition),
                    )
                    .await?;
                platform
                    .update_service(&env.cluster, &names.service, &task_definition_arn)
                    .await?;
                ledger.done(LedgerKind::ServiceUpdate, &service.arn, false);
            }
            service.arn
        }
        _ => {
            let spec = ServiceSpec {
                cluster: env.cluster.clone(),
                name: names.service.clone(),
                task_definition: task_definition_arn.clone(),
                target_group_arn: target_group_arn.clone(),
                subnets: env.private_subnets.clone(),
                security_group: env.ecs_security_group.clone(),
            };
            ledger
                .intend(LedgerKind::Service, &names.service, true, None)
                .await?;
            let arn = create_or_adopt(
                || platform.create_service(&spec, &tags),
                || async {
                    Ok(platform
                        .find_service(&env.cluster, &names.service)
                        .await?
                        .filter(|s| s.status == "ACTIVE")
                        .map(|s| s.arn))
                },
            )
            .await?;
            ledger.done(LedgerKind::Service, &arn, true);
            arn
        }
    };

    Ok(EcsOutput {
        access_point_id: access_point.id,
        task_definition_arn,
        target_group_arn,
        listener_rule_arn,
        service_arn,
        changes: ledger.changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{
        AccessPoint, EnvPorts, ServiceState, TargetGroupState, TaskDefinitionState,
    };
    use std::sync::{Arc, Mutex};
    use stepdeploy_shared::aws_error::AwsCallError;
    use stepdeploy_shared::errors::ErrorName;
    use stepdeploy_shared::listener::ListenerRule;
    use stepdeploy_shared::state::memory::MemoryState;

    /// An account in memory, counting the calls that change something.
    #[derive(Default)]
    struct Account {
        access_points: Vec<(String, AccessPoint)>,
        task_definitions: Vec<(String, TaskDefinitionState)>,
        target_groups: Vec<(String, TargetGroupState)>,
        rules: Vec<ListenerRule>,
        services: Vec<(String, ServiceState)>,
        mutations: Vec<String>,
        /// Calls that go wrong after AWS applied them, by name.
        faults: std::collections::HashMap<&'static str, Fault>,
    }

    /// How an applied create goes wrong.
    #[derive(Clone, Copy)]
    enum Fault {
        /// Its answer is lost (a 500): the SDK would send it again.
        Dropped,
        /// The phase dies right after it (here: an error no one retries).
        Crash,
    }

    fn failure(code: &str) -> AwsCallError {
        let err: aws_sdk_ecs::error::SdkError<
            aws_sdk_ecs::operation::create_service::CreateServiceError,
            (),
        > = aws_sdk_ecs::error::SdkError::service_error(
            aws_sdk_ecs::operation::create_service::CreateServiceError::generic(
                aws_sdk_ecs::error::ErrorMetadata::builder()
                    .code(code)
                    .build(),
            ),
            (),
        );
        AwsCallError::new("fake", err)
    }

    #[derive(Default, Clone)]
    struct Fake(Arc<Mutex<Account>>, MemoryState);

    impl Fake {
        fn entries(&self) -> Vec<LedgerEntry> {
            self.1.entries()
        }

        fn with<T>(&self, f: impl FnOnce(&mut Account) -> T) -> T {
            f(&mut self.0.lock().expect("lock"))
        }

        /// The answer to an applied create (`value`), unless a fault was set for `call`.
        fn answer<T>(&self, call: &'static str, value: T) -> Result<T, AwsCallError> {
            match self.with(|a| a.faults.remove(call)) {
                None => Ok(value),
                Some(Fault::Dropped) => Err(failure("InternalFailure")),
                Some(Fault::Crash) => Err(failure("AccessDeniedException")),
            }
        }
    }

    impl Platform for Fake {
        async fn find_access_point(
            &self,
            _efs: &str,
            path: &str,
            _known: Option<&str>,
        ) -> Result<Option<AccessPoint>, AwsCallError> {
            Ok(self.with(|a| {
                a.access_points
                    .iter()
                    .find(|(p, _)| p == path)
                    .map(|(_, ap)| ap.clone())
            }))
        }
        async fn create_access_point(
            &self,
            _efs: &str,
            path: &str,
            _token: &str,
            tags: &Tags,
        ) -> Result<AccessPoint, AwsCallError> {
            assert!(tags
                .iter()
                .any(|(k, v)| k == "ManagedBy" && v == "stepdeploy"));
            let value = self.with(|a| {
                let ap = AccessPoint {
                    id: format!("fsap-{}", a.access_points.len()),
                    arn: "arn:ap".into(),
                };
                a.access_points.push((path.into(), ap.clone()));
                a.mutations.push("CreateAccessPoint".into());
                ap
            });
            self.answer("CreateAccessPoint", value)
        }
        async fn current_task_definition(
            &self,
            family: &str,
        ) -> Result<Option<TaskDefinitionState>, AwsCallError> {
            Ok(self.with(|a| {
                a.task_definitions
                    .iter()
                    .rev()
                    .find(|(f, _)| f == family)
                    .map(|(_, td)| td.clone())
            }))
        }
        async fn register_task_definition(
            &self,
            spec: &TaskSpec,
            _tags: &Tags,
        ) -> Result<String, AwsCallError> {
            let value = self.with(|a| {
                let arn = format!("arn:td/{}:{}", spec.family, a.task_definitions.len() + 1);
                a.task_definitions.push((
                    spec.family.clone(),
                    TaskDefinitionState {
                        arn: arn.clone(),
                        fingerprint: Some(spec.fingerprint()),
                        access_point_id: Some(spec.access_point_id.clone()),
                    },
                ));
                a.mutations.push("RegisterTaskDefinition".into());
                arn
            });
            self.answer("RegisterTaskDefinition", value)
        }
        async fn find_target_group(
            &self,
            name: &str,
        ) -> Result<Option<TargetGroupState>, AwsCallError> {
            Ok(self.with(|a| {
                a.target_groups
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, tg)| tg.clone())
            }))
        }
        async fn create_target_group(
            &self,
            name: &str,
            _vpc: &str,
            _tags: &Tags,
        ) -> Result<String, AwsCallError> {
            let value = self.with(|a| {
                let arn = format!("arn:tg/{name}");
                a.target_groups.push((
                    name.into(),
                    TargetGroupState {
                        arn: arn.clone(),
                        matcher: Some(MATCHER.into()),
                        health_check_path: Some("/".into()),
                    },
                ));
                a.mutations.push("CreateTargetGroup".into());
                arn
            });
            self.answer("CreateTargetGroup", value)
        }
        async fn fix_health_check(&self, arn: &str) -> Result<(), AwsCallError> {
            self.with(|a| a.mutations.push(format!("ModifyTargetGroup {arn}")));
            Ok(())
        }
        async fn rules(&self, _listener: &str) -> Result<Vec<ListenerRule>, AwsCallError> {
            Ok(self.with(|a| a.rules.clone()))
        }
        async fn create_rule(
            &self,
            _listener: &str,
            priority: u32,
            host: &str,
            tg: &str,
            _tags: &Tags,
        ) -> Result<Option<String>, AwsCallError> {
            let value = self.with(|a| {
                if a.rules.iter().any(|r| r.priority == Some(priority)) {
                    return None;
                }
                let arn = format!("arn:rule/{priority}");
                a.rules.push(ListenerRule {
                    arn: arn.clone(),
                    priority: Some(priority),
                    hosts: vec![host.into()],
                    target_groups: vec![tg.into()],
                });
                a.mutations.push("CreateRule".into());
                Some(arn)
            });
            self.answer("CreateRule", value)
        }
        async fn set_rule_priority(
            &self,
            rule_arn: &str,
            priority: u32,
        ) -> Result<bool, AwsCallError> {
            Ok(self.with(|a| {
                a.mutations.push("SetRulePriorities".into());
                if let Some(r) = a.rules.iter_mut().find(|r| r.arn == rule_arn) {
                    r.priority = Some(priority);
                }
                true
            }))
        }
        async fn forward_rule(&self, rule_arn: &str, tg: &str) -> Result<(), AwsCallError> {
            self.with(|a| {
                a.mutations.push("ModifyRule".into());
                if let Some(r) = a.rules.iter_mut().find(|r| r.arn == rule_arn) {
                    r.target_groups = vec![tg.into()];
                }
            });
            Ok(())
        }
        async fn find_service(
            &self,
            _cluster: &str,
            name: &str,
        ) -> Result<Option<ServiceState>, AwsCallError> {
            Ok(self.with(|a| {
                a.services
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, s)| s.clone())
            }))
        }
        async fn create_service(
            &self,
            spec: &ServiceSpec,
            _tags: &Tags,
        ) -> Result<String, AwsCallError> {
            assert!(!spec.subnets.is_empty() && !spec.security_group.is_empty());
            let value = self.with(|a| {
                let arn = format!("arn:service/{}", spec.name);
                a.services.push((
                    spec.name.clone(),
                    ServiceState {
                        arn: arn.clone(),
                        status: "ACTIVE".into(),
                        task_definition: spec.task_definition.clone(),
                    },
                ));
                a.mutations.push("CreateService".into());
                arn
            });
            self.answer("CreateService", value)
        }
        async fn update_service(
            &self,
            _cluster: &str,
            name: &str,
            td: &str,
        ) -> Result<(), AwsCallError> {
            self.with(|a| {
                a.mutations.push("UpdateService".into());
                if let Some((_, s)) = a.services.iter_mut().find(|(n, _)| n == name) {
                    s.task_definition = td.into();
                }
            });
            Ok(())
        }
    }

    impl Connector for Fake {
        type Platform = Fake;
        type State = MemoryState;
        async fn connect(
            &self,
            _env: &stepdeploy_shared::EnvironmentConfig,
        ) -> EnvPorts<Fake, MemoryState> {
            EnvPorts {
                platform: self.clone(),
                state: self.1.clone(),
            }
        }
    }

    fn plan(image: &str, priority: u32) -> DeploymentPlan {
        stepdeploy_shared::plan::sample(image, priority)
    }

    /// The tenant secret's full ARN, as database returns it.
    const SECRET: &str =
        "arn:aws:secretsmanager:eu-west-1:222222222222:secret:sit-goldencrust-db-credentials-AbCdEf";

    async fn run(fake: &Fake, plan: &DeploymentPlan) -> Result<EcsOutput, EcsError> {
        handle(
            serde_json::json!({ "plan": plan, "database": { "secret_arn": SECRET, "database": "goldencrust_db", "username": "goldencrust_user", "changes": [] } }),
            fake,
        )
        .await
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

    #[tokio::test]
    async fn drifted_rule_is_put_back_and_recorded_as_an_update() {
        let fake = Fake::default();
        run(&fake, &plan("wordpress:6.4-apache", 140))
            .await
            .expect("first");
        fake.with(|a| a.rules[0].priority = Some(99));
        run(&fake, &plan("wordpress:6.4-apache", 140))
            .await
            .expect("converged");
        assert_eq!(fake.with(|a| a.rules[0].priority), Some(140));
        let last = fake.entries().last().cloned().expect("entry");
        assert_eq!(
            (last.kind.as_str(), last.created),
            ("listener_rule_update", false)
        );
        assert_eq!(
            last.previous.as_deref(),
            Some("priority=99;target_group=arn:tg/sit-goldencrust-tg")
        );
    }

    #[tokio::test]
    async fn taken_priority_fails_with_priority_in_use() {
        let fake = Fake::default();
        fake.with(|a| {
            a.rules.push(ListenerRule {
                arn: "arn:other".into(),
                priority: Some(140),
                hosts: vec!["other.wpsit.kimmyai.io".into()],
                target_groups: vec![],
            })
        });
        let err = run(&fake, &plan("wordpress:6.4-apache", 140))
            .await
            .expect_err("taken");
        assert_eq!(err.error_name(), "PriorityInUse");
    }

    #[tokio::test]
    async fn bad_input_is_validation_failed_and_touches_nothing() {
        let fake = Fake::default();
        let err = handle(serde_json::json!({"plan": {"tenant": "x"}}), &fake)
            .await
            .expect_err("bad");
        assert_eq!(err.error_name(), "ValidationFailed");
        let p = plan("wordpress:6.4-apache", 140);
        let err = handle(serde_json::json!({ "plan": p }), &fake)
            .await
            .expect_err("bad");
        assert_eq!(err.error_name(), "ValidationFailed");
        assert!(fake.with(|a| a.mutations.is_empty()));
    }

    #[test]
    fn task_spec_matches_the_operators_module() {
        let p = plan("wordpress:6.4-apache", 140);
        let spec = TaskSpec::for_plan(&p, "fsap-1", SECRET);
        assert_eq!(spec.family, "sit-goldencrust");
        assert_eq!((spec.cpu.as_str(), spec.memory.as_str()), ("512", "1024"));
        let env: std::collections::HashMap<_, _> = spec.environment.iter().cloned().collect();
        assert_eq!(env["WORDPRESS_DB_NAME"], "goldencrust_db");
        assert_eq!(env["WORDPRESS_TABLE_PREFIX"], "wp_");
        assert!(env["WORDPRESS_CONFIG_EXTRA"]
            .contains("define('WP_HOME', 'https://goldencrust.wpsit.kimmyai.io');"));
        assert!(env["WORDPRESS_CONFIG_EXTRA"].contains("HTTP_CLOUDFRONT_FORWARDED_PROTO"));
        assert_eq!(
            spec.secrets,
            [
                (
                    "WORDPRESS_DB_PASSWORD".to_string(),
                    format!("{SECRET}:password::")
                ),
                (
                    "WORDPRESS_DB_USER".to_string(),
                    format!("{SECRET}:username::")
                ),
            ]
        );
        assert_eq!(spec.log_stream_prefix, "goldencrust");
        assert_eq!(
            spec.fingerprint(),
            TaskSpec::for_plan(&p, "fsap-1", SECRET).fingerprint()
        );
        assert_ne!(
            spec.fingerprint(),
            TaskSpec::for_plan(&p, "fsap-2", SECRET).fingerprint()
        );
    }
}
