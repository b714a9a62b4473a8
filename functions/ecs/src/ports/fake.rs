//! An account in memory for the handler's and the steps' tests: every port
//! over the same resources, counting the calls that change something, with
//! faults to inject into creates.

use super::ecs::ServiceState;
use super::elb::TargetGroupState;
use super::{
    AccessPoint, AccessPoints, EnvPorts, HostRules, ServiceSpec, Services, Tags, TargetGroups,
    TaskDefinitionState, TaskDefinitions, MATCHER,
};
use crate::spec::TaskSpec;
use std::sync::{Arc, Mutex};
use stepdeploy_shared::aws::Same;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::ledger::LedgerEntry;
use stepdeploy_shared::listener::{ListenerRule, ListenerRules};
use stepdeploy_shared::state::memory::MemoryState;
use stepdeploy_shared::DeploymentPlan;

/// The sample plan (the `sit` environment, tenant goldencrust).
pub fn plan(image: &str, priority: u32) -> DeploymentPlan {
    stepdeploy_shared::plan::sample(image, priority)
}

/// The tenant secret's full ARN, as database returns it.
pub const SECRET: &str =
    "arn:aws:secretsmanager:eu-west-1:222222222222:secret:sit-goldencrust-db-credentials-AbCdEf";

/// An account in memory, counting the calls that change something.
#[derive(Default)]
pub struct Account {
    pub access_points: Vec<(String, AccessPoint)>,
    pub task_definitions: Vec<(String, TaskDefinitionState)>,
    pub target_groups: Vec<(String, TargetGroupState)>,
    pub rules: Vec<ListenerRule>,
    pub services: Vec<(String, ServiceState)>,
    /// The calls that changed something, in order.
    pub mutations: Vec<String>,
    /// Calls that go wrong after AWS applied them, by name.
    pub faults: std::collections::HashMap<&'static str, Fault>,
}

/// How an applied create goes wrong.
#[derive(Clone, Copy)]
pub enum Fault {
    /// Its answer is lost (a 500): the SDK would send it again.
    Dropped,
    /// The phase dies right after it (here: an error no one retries).
    Crash,
}

/// An AWS failure with error code `code`.
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

/// The account and the state table (the ledger), shared by every clone.
#[derive(Default, Clone)]
pub struct Fake(Arc<Mutex<Account>>, pub MemoryState);

impl Fake {
    /// Every ledger entry written.
    pub fn entries(&self) -> Vec<LedgerEntry> {
        self.1.entries()
    }

    /// Runs `f` on the account.
    pub fn with<T>(&self, f: impl FnOnce(&mut Account) -> T) -> T {
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

    /// The same fake behind every port, for the handler.
    pub fn connector(&self) -> Same<EnvPorts<Fake, Fake, Fake, MemoryState>> {
        Same(EnvPorts {
            efs: self.clone(),
            ecs: self.clone(),
            elb: self.clone(),
            state: self.1.clone(),
        })
    }
}

impl AccessPoints for Fake {
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
}

impl TaskDefinitions for Fake {
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
}

impl TargetGroups for Fake {
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
}

impl ListenerRules for Fake {
    async fn rules(&self, _listener: &str) -> Result<Vec<ListenerRule>, AwsCallError> {
        Ok(self.with(|a| a.rules.clone()))
    }
}

impl HostRules for Fake {
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
    async fn set_rule_priority(&self, rule_arn: &str, priority: u32) -> Result<bool, AwsCallError> {
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
}

impl Services for Fake {
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
