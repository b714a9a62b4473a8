//! ecs's domain logic: converge the tenant's EFS access point, task
//! definition, target group, listener rule and service on the plan, creating
//! or updating, never duplicating. Each change is written to the run's ledger
//! as soon as it is made, so rollback can undo exactly what this run did.

use crate::error::EcsError;
use crate::ports::{Connector, Platform, ServiceSpec, Tags, HEALTH_CHECK_PATH, MATCHER};
use crate::spec::TaskSpec;
use serde::{Deserialize, Serialize};
use stepdeploy_shared::state::{LedgerEntry, StateStore};
use stepdeploy_shared::DeploymentPlan;

/// What the state machine passes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcsInput {
    /// bootstrap's plan.
    pub plan: DeploymentPlan,
}

/// What the phase did, for the execution history and the next phases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcsOutput {
    /// EFS access point id.
    pub access_point_id: String,
    /// Task definition ARN the service runs.
    pub task_definition_arn: String,
    /// Target group ARN.
    pub target_group_arn: String,
    /// Listener rule ARN.
    pub listener_rule_arn: String,
    /// Service ARN.
    pub service_arn: String,
    /// What changed in this run (`created …`, `updated …`); empty when nothing had to.
    pub changes: Vec<String>,
}

/// Ledger kinds this phase writes (rollback matches on them).
pub mod kinds {
    /// An EFS access point this run created.
    pub const ACCESS_POINT: &str = "efs_access_point";
    /// A task definition revision this run registered (`previous`: the revision before).
    pub const TASK_DEFINITION: &str = "task_definition";
    /// A target group this run created.
    pub const TARGET_GROUP: &str = "target_group";
    /// A listener rule this run created.
    pub const LISTENER_RULE: &str = "listener_rule";
    /// A listener rule this run changed (`previous`: `priority=…;target_group=…`).
    pub const LISTENER_RULE_UPDATE: &str = "listener_rule_update";
    /// A service this run created.
    pub const SERVICE: &str = "service";
    /// A service this run rolled to a new task definition (`previous`: the old one).
    pub const SERVICE_UPDATE: &str = "service_update";
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
    async fn record(
        &mut self,
        kind: &str,
        id: &str,
        created: bool,
        previous: Option<String>,
    ) -> Result<(), EcsError> {
        self.state
            .record(
                self.execution,
                &LedgerEntry {
                    kind: kind.into(),
                    id: id.into(),
                    created,
                    phase: "ecs".into(),
                    previous,
                },
            )
            .await?;
        self.changes.push(format!(
            "{} {kind} {id}",
            if created { "created" } else { "updated" }
        ));
        Ok(())
    }
}

/// Runs the phase for one state machine input.
pub async fn handle(
    input: serde_json::Value,
    connector: &impl Connector,
) -> Result<EcsOutput, EcsError> {
    let EcsInput { plan } = serde_json::from_value(input)
        .map_err(|e| EcsError::Validation(format!("expected {{plan}}: {e}")))?;
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

    let access_point = match platform
        .find_access_point(&env.efs_id, &names.efs_path)
        .await?
    {
        Some(ap) => ap,
        None => {
            // The token makes a retried create return the same access point.
            let token = format!("{}-{}", env.name, plan.tenant);
            let ap = platform
                .create_access_point(&env.efs_id, &names.efs_path, &token, &tags)
                .await?;
            ledger
                .record(kinds::ACCESS_POINT, &ap.id, true, None)
                .await?;
            ap
        }
    };

    let spec = TaskSpec::for_plan(&plan, &access_point.id);
    let current = platform.current_task_definition(&names.task_family).await?;
    let task_definition_arn = match current {
        Some(td) if td.fingerprint.as_deref() == Some(spec.fingerprint().as_str()) => td.arn,
        previous => {
            let arn = platform.register_task_definition(&spec, &tags).await?;
            ledger
                .record(kinds::TASK_DEFINITION, &arn, true, previous.map(|p| p.arn))
                .await?;
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
            let arn = platform
                .create_target_group(&names.target_group, &env.vpc_id, &tags)
                .await?;
            ledger.record(kinds::TARGET_GROUP, &arn, true, None).await?;
            arn
        }
    };

    let rules = platform.rules(&env.alb_listener_arn).await?;
    let ours = rules
        .iter()
        .find(|r| r.hosts.iter().any(|h| h == &names.host));
    let listener_rule_arn = match ours {
        None => {
            let arn = platform
                .create_rule(
                    &env.alb_listener_arn,
                    plan.alb_priority,
                    &names.host,
                    &target_group_arn,
                    &tags,
                )
                .await?
                .ok_or(EcsError::PriorityInUse {
                    priority: plan.alb_priority,
                })?;
            ledger
                .record(kinds::LISTENER_RULE, &arn, true, None)
                .await?;
            arn
        }
        Some(rule) => {
            let previous = format!(
                "priority={};target_group={}",
                rule.priority.map(|p| p.to_string()).unwrap_or_default(),
                rule.target_groups.join(",")
            );
            let mut changed = false;
            if rule.priority != Some(plan.alb_priority) {
                if !platform
                    .set_rule_priority(&rule.arn, plan.alb_priority)
                    .await?
                {
                    return Err(EcsError::PriorityInUse {
                        priority: plan.alb_priority,
                    });
                }
                changed = true;
            }
            if rule.target_groups != [target_group_arn.clone()] {
                platform.forward_rule(&rule.arn, &target_group_arn).await?;
                changed = true;
            }
            if changed {
                ledger
                    .record(
                        kinds::LISTENER_RULE_UPDATE,
                        &rule.arn,
                        false,
                        Some(previous),
                    )
                    .await?;
            }
            rule.arn.clone()
        }
    };

    let service_arn = match platform.find_service(&env.cluster, &names.service).await? {
        Some(service) if service.status != "INACTIVE" => {
            if service.task_definition != task_definition_arn {
                platform
                    .update_service(&env.cluster, &names.service, &task_definition_arn)
                    .await?;
                ledger
                    .record(
                        kinds::SERVICE_UPDATE,
                        &service.arn,
                        false,
                        Some(service.task_definition),
                    )
                    .await?;
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
            let arn = platform.create_service(&spec, &tags).await?;
            ledger.record(kinds::SERVICE, &arn, true, None).await?;
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
    }

    impl Platform for Fake {
        async fn find_access_point(
            &self,
            _efs: &str,
            path: &str,
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
            Ok(self.with(|a| {
                let ap = AccessPoint {
                    id: format!("fsap-{}", a.access_points.len()),
                    arn: "arn:ap".into(),
                };
                a.access_points.push((path.into(), ap.clone()));
                a.mutations.push("CreateAccessPoint".into());
                ap
            }))
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
            Ok(self.with(|a| {
                let arn = format!("arn:td/{}:{}", spec.family, a.task_definitions.len() + 1);
                a.task_definitions.push((
                    spec.family.clone(),
                    TaskDefinitionState {
                        arn: arn.clone(),
                        fingerprint: Some(spec.fingerprint()),
                    },
                ));
                a.mutations.push("RegisterTaskDefinition".into());
                arn
            }))
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
            Ok(self.with(|a| {
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
            }))
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
            Ok(self.with(|a| {
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
            }))
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
            Ok(self.with(|a| {
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
            }))
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

    async fn run(fake: &Fake, plan: &DeploymentPlan) -> Result<EcsOutput, EcsError> {
        handle(serde_json::json!({ "plan": plan }), fake).await
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
        let kinds: Vec<String> = fake.entries().iter().map(|e| e.kind.clone()).collect();
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
        assert_eq!(ledger[0].kind, "task_definition");
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
        assert!(fake.with(|a| a.mutations.is_empty()));
    }

    #[test]
    fn task_spec_matches_the_operators_module() {
        let p = plan("wordpress:6.4-apache", 140);
        let spec = TaskSpec::for_plan(&p, "fsap-1");
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
                ("WORDPRESS_DB_PASSWORD".to_string(), "arn:aws:secretsmanager:eu-west-1:222222222222:secret:sit-goldencrust-db-credentials:password::".to_string()),
                ("WORDPRESS_DB_USER".to_string(), "arn:aws:secretsmanager:eu-west-1:222222222222:secret:sit-goldencrust-db-credentials:username::".to_string()),
            ]
        );
        assert_eq!(spec.log_stream_prefix, "goldencrust");
        assert_eq!(
            spec.fingerprint(),
            TaskSpec::for_plan(&p, "fsap-1").fingerprint()
        );
        assert_ne!(
            spec.fingerprint(),
            TaskSpec::for_plan(&p, "fsap-2").fingerprint()
        );
    }
}
