//! In-memory fakes of the ports, for rollback's and teardown's unit tests
//! (feature `testing`): one [`FakeEnv`] is every port of one environment,
//! keeps what exists in a [`World`], logs each call as `operation args`, and
//! fails the operations named in [`World::failing`]. The state table is
//! shared's `MemoryState` (same conditional semantics as DynamoDB).

use crate::ports::{
    Connector, DnsResources, DocumentStore, EcsResources, EfsResources, ElbResources, MySqlAdmin,
    MySqlError, Page, Registry, Removal, Resources, SecretResources,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::{EnvironmentConfig, RdsConfig};
use stepdeploy_shared::mysql::{AgentError, DbState};
use stepdeploy_shared::state::memory::MemoryState;
use stepdeploy_shared::state::RegistryRecord;

/// Items per page of the fake listings (so three make two pages).
pub const PAGE: usize = 2;

/// A listener rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeRule {
    /// ARN.
    pub arn: String,
    /// Host header.
    pub host: String,
    /// Priority.
    pub priority: i32,
    /// Forward target.
    pub target_group: String,
}

/// What exists in the fake environment.
#[derive(Debug, Default)]
pub struct World {
    /// Every call, in order: `operation args`.
    pub calls: Vec<String>,
    /// Operations that fail (`efs:DeleteAccessPoint`, `mysql:DropUser`, …).
    pub failing: BTreeSet<&'static str>,
    /// Access points: (id, root path).
    pub access_points: Vec<(String, String)>,
    /// ACTIVE task definition ARNs.
    pub task_definitions: Vec<String>,
    /// ACTIVE services: name → task definition.
    pub services: BTreeMap<String, String>,
    /// Target groups: (name, ARN).
    pub target_groups: Vec<(String, String)>,
    /// The listener's rules.
    pub rules: Vec<FakeRule>,
    /// Secrets by name: `true` once scheduled for deletion.
    pub secrets: BTreeMap<String, bool>,
    /// A records: name (`host.`) → alias target.
    pub records: BTreeMap<String, String>,
    /// Config documents: key → current version.
    pub documents: BTreeMap<String, String>,
    /// MySQL: what exists.
    pub db: DbState,
    /// Databases moved away: (database, retained as).
    pub retained: Vec<(String, String)>,
    /// Registry records by tenant.
    pub registry: BTreeMap<String, RegistryRecord>,
    /// Releases by `{tenant}#{number}`: the execution that wrote each.
    pub releases: BTreeMap<String, String>,
}

/// The fake ARN of the secret called `name`.
pub fn secret_arn(name: &str) -> String {
    format!("arn:aws:secretsmanager:eu-west-1:1:secret:{name}-AbCdEf")
}

/// Every port of one environment, in memory; clones share the world.
#[derive(Debug, Clone, Default)]
pub struct FakeEnv {
    /// What exists.
    pub world: Arc<Mutex<World>>,
    /// The state table.
    pub state: MemoryState,
}

fn page_of<T: Clone>(items: &[T], token: Option<String>) -> Page<T> {
    let start: usize = token.and_then(|t| t.parse().ok()).unwrap_or(0);
    let end = (start + PAGE).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Page::new(items[start.min(end)..end].to_vec(), next.as_deref())
}

impl FakeEnv {
    /// Runs `f` on the world.
    pub fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self
            .world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<String> {
        self.with(|w| w.calls.clone())
    }

    /// The calls so far to `operation`.
    pub fn calls_to(&self, operation: &str) -> Vec<String> {
        let prefix = format!("{operation} ");
        self.calls()
            .into_iter()
            .filter(|c| c.starts_with(&prefix) || c == operation)
            .collect()
    }

    /// Logs a call; fails it if its operation is failing.
    fn call(&self, operation: &'static str, args: &[&str]) -> Result<(), AwsCallError> {
        self.with(|w| {
            w.calls.push(
                [operation]
                    .iter()
                    .chain(args)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            if w.failing.contains(operation) {
                Err(AwsCallError::other(
                    operation,
                    std::io::Error::other("injected failure"),
                ))
            } else {
                Ok(())
            }
        })
    }

    fn sql(&self, operation: &'static str, args: &[&str]) -> Result<(), MySqlError> {
        self.call(operation, args)
            .map_err(|e| MySqlError::Agent(AgentError::Refused(e.to_string())))
    }
}

impl EcsResources for FakeEnv {
    async fn task_definitions_page(
        &self,
        family: &str,
        token: Option<String>,
    ) -> Result<Page<String>, AwsCallError> {
        let from = token.clone().unwrap_or_default();
        self.call("ecs:ListTaskDefinitions", &[family, &from])?;
        let prefix = format!("task-definition/{family}");
        Ok(self.with(|w| {
            let arns: Vec<String> = w
                .task_definitions
                .iter()
                .filter(|a| a.contains(&prefix))
                .cloned()
                .collect();
            page_of(&arns, token)
        }))
    }

    async fn deregister_task_definition(&self, arn: &str) -> Result<Removal, AwsCallError> {
        self.call("ecs:DeregisterTaskDefinition", &[arn])?;
        Ok(self.with(|w| removed(&mut w.task_definitions, |a| a == arn)))
    }

    async fn service_active(&self, cluster: &str, service: &str) -> Result<bool, AwsCallError> {
        self.call("ecs:DescribeServices", &[cluster, service])?;
        Ok(self.with(|w| w.services.contains_key(service)))
    }

    async fn delete_service(&self, cluster: &str, service: &str) -> Result<Removal, AwsCallError> {
        self.call("ecs:DeleteService", &[cluster, service])?;
        Ok(self.with(|w| match w.services.remove(service) {
            Some(_) => Removal::Removed,
            None => Removal::AlreadyGone,
        }))
    }

    async fn restore_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> Result<(), AwsCallError> {
        self.call("ecs:UpdateService", &[cluster, service, task_definition])?;
        self.with(|w| w.services.insert(service.into(), task_definition.into()));
        Ok(())
    }
}

fn removed<T>(items: &mut Vec<T>, is: impl Fn(&T) -> bool) -> Removal {
    let before = items.len();
    items.retain(|i| !is(i));
    if items.len() < before {
        Removal::Removed
    } else {
        Removal::AlreadyGone
    }
}

impl EfsResources for FakeEnv {
    async fn access_points_page(
        &self,
        file_system: &str,
        path: &str,
        token: Option<String>,
    ) -> Result<Page<String>, AwsCallError> {
        let from = token.clone().unwrap_or_default();
        self.call("efs:DescribeAccessPoints", &[file_system, &from])?;
        Ok(self.with(|w| {
            // Pages of the whole file system, filtered page by page as EFS answers.
            let page = page_of(&w.access_points, token);
            Page {
                items: page
                    .items
                    .into_iter()
                    .filter(|(_, p)| p == path)
                    .map(|(id, _)| id)
                    .collect(),
                next: page.next,
            }
        }))
    }

    async fn delete_access_point(&self, id: &str) -> Result<Removal, AwsCallError> {
        self.call("efs:DeleteAccessPoint", &[id])?;
        Ok(self.with(|w| removed(&mut w.access_points, |(i, _)| i == id)))
    }
}

impl ElbResources for FakeEnv {
    async fn target_groups_named(&self, name: &str) -> Result<Vec<String>, AwsCallError> {
        self.call("elbv2:DescribeTargetGroups", &[name])?;
        Ok(self.with(|w| {
            w.target_groups
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, arn)| arn.clone())
                .collect()
        }))
    }

    async fn rules_for_host(
        &self,
        listener: &str,
        host: &str,
    ) -> Result<Vec<String>, AwsCallError> {
        self.call("elbv2:DescribeRules", &[listener])?;
        Ok(self.with(|w| {
            w.rules
                .iter()
                .filter(|r| r.host == host)
                .map(|r| r.arn.clone())
                .collect()
        }))
    }

    async fn delete_target_group(&self, arn: &str) -> Result<Removal, AwsCallError> {
        self.call("elbv2:DeleteTargetGroup", &[arn])?;
        Ok(self.with(|w| removed(&mut w.target_groups, |(_, a)| a == arn)))
    }

    async fn delete_rule(&self, arn: &str) -> Result<Removal, AwsCallError> {
        self.call("elbv2:DeleteRule", &[arn])?;
        Ok(self.with(|w| removed(&mut w.rules, |r| r.arn == arn)))
    }

    async fn restore_rule_priority(&self, rule: &str, priority: i32) -> Result<(), AwsCallError> {
        self.call("elbv2:SetRulePriorities", &[rule, &priority.to_string()])?;
        self.with(|w| {
            w.rules
                .iter_mut()
                .filter(|r| r.arn == rule)
                .for_each(|r| r.priority = priority)
        });
        Ok(())
    }

    async fn restore_rule_forward(
        &self,
        rule: &str,
        target_group: &str,
    ) -> Result<(), AwsCallError> {
        self.call("elbv2:ModifyRule", &[rule, target_group])?;
        self.with(|w| {
            w.rules
                .iter_mut()
                .filter(|r| r.arn == rule)
                .for_each(|r| r.target_group = target_group.into())
        });
        Ok(())
    }
}

impl SecretResources for FakeEnv {
    async fn live_secret(&self, name: &str) -> Result<Option<String>, AwsCallError> {
        self.call("secretsmanager:DescribeSecret", &[name])?;
        Ok(self.with(|w| (w.secrets.get(name) == Some(&false)).then(|| secret_arn(name))))
    }

    async fn schedule_deletion(
        &self,
        id: &str,
        recovery_days: i64,
    ) -> Result<Removal, AwsCallError> {
        self.call(
            "secretsmanager:DeleteSecret",
            &[id, &recovery_days.to_string()],
        )?;
        Ok(self.with(|w| {
            let live = w
                .secrets
                .iter_mut()
                .find(|(name, scheduled)| !**scheduled && (*name == id || secret_arn(name) == id));
            match live {
                Some((_, scheduled)) => {
                    *scheduled = true;
                    Removal::Removed
                }
                None => Removal::AlreadyGone,
            }
        }))
    }
}

impl DnsResources for FakeEnv {
    type Record = String;

    async fn a_record(&self, zone: &str, fqdn: &str) -> Result<Option<String>, AwsCallError> {
        self.call("route53:ListResourceRecordSets", &[zone, fqdn])?;
        Ok(self.with(|w| w.records.contains_key(fqdn).then(|| fqdn.to_string())))
    }

    async fn delete_record(&self, zone: &str, record: String) -> Result<(), AwsCallError> {
        self.call(
            "route53:ChangeResourceRecordSets",
            &[zone, "DELETE", &record],
        )?;
        self.with(|w| w.records.remove(&record));
        Ok(())
    }

    async fn upsert_alias(
        &self,
        zone: &str,
        fqdn: &str,
        target: &str,
        _target_zone: &str,
    ) -> Result<(), AwsCallError> {
        self.call(
            "route53:ChangeResourceRecordSets",
            &[zone, "UPSERT", fqdn, target],
        )?;
        self.with(|w| w.records.insert(fqdn.into(), target.into()));
        Ok(())
    }
}

impl DocumentStore for FakeEnv {
    async fn restore_version(
        &self,
        bucket: &str,
        key: &str,
        version: &str,
    ) -> Result<(), AwsCallError> {
        self.call("s3:CopyObject", &[bucket, key, version])?;
        self.with(|w| w.documents.insert(key.into(), version.into()));
        Ok(())
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), AwsCallError> {
        self.call("s3:DeleteObject", &[bucket, key])?;
        self.with(|w| w.documents.remove(key));
        Ok(())
    }
}

impl MySqlAdmin for FakeEnv {
    async fn inspect(
        &self,
        _rds: &RdsConfig,
        database: &str,
        user: &str,
    ) -> Result<DbState, MySqlError> {
        self.sql("mysql:Inspect", &[database, user])?;
        Ok(self.with(|w| w.db))
    }

    async fn drop_user(&self, _rds: &RdsConfig, user: &str) -> Result<(), MySqlError> {
        self.sql("mysql:DropUser", &[user])?;
        self.with(|w| w.db.user_exists = false);
        Ok(())
    }

    async fn drop_database(&self, _rds: &RdsConfig, database: &str) -> Result<(), MySqlError> {
        self.sql("mysql:DropDatabase", &[database])?;
        self.with(|w| w.db.database_exists = false);
        Ok(())
    }

    async fn retain_database(
        &self,
        _rds: &RdsConfig,
        database: &str,
        retained_as: &str,
    ) -> Result<(), MySqlError> {
        self.sql("mysql:RetainDatabase", &[database, retained_as])?;
        self.with(|w| {
            w.db.database_exists = false;
            w.retained.push((database.into(), retained_as.into()));
        });
        Ok(())
    }
}

impl Registry for FakeEnv {
    async fn lock_owner(&self, tenant: &str) -> Result<Option<String>, AwsCallError> {
        self.call("dynamodb:GetItem (lock)", &[tenant])?;
        Ok(self
            .state
            .with(|t| t.locks.get(tenant).map(|h| h.owner.clone())))
    }

    async fn is_registered(&self, tenant: &str) -> Result<bool, AwsCallError> {
        self.call("dynamodb:GetItem (registry)", &[tenant])?;
        Ok(self.with(|w| w.registry.contains_key(tenant)))
    }

    async fn claimed_tenants(&self) -> Result<Vec<String>, AwsCallError> {
        self.call("dynamodb:Query (priority claims)", &[])?;
        let tenants: BTreeSet<String> = self.state.with(|t| t.claims.values().cloned().collect());
        Ok(tenants.into_iter().collect())
    }

    async fn update_registry(
        &self,
        tenant: &str,
        record: &RegistryRecord,
    ) -> Result<(), AwsCallError> {
        self.call("dynamodb:UpdateItem (registry)", &[tenant])?;
        self.with(|w| w.registry.insert(tenant.into(), record.clone()));
        Ok(())
    }

    async fn unregister(&self, tenant: &str, execution: &str) -> Result<bool, AwsCallError> {
        self.call("dynamodb:UpdateItem (unregister)", &[tenant, execution])?;
        Ok(self.with(|w| {
            let ours = w
                .registry
                .get(tenant)
                .is_some_and(|r| r.last_execution == execution);
            if ours {
                w.registry.remove(tenant);
            }
            ours
        }))
    }

    async fn forget_tenant(&self, tenant: &str) -> Result<(), AwsCallError> {
        self.call("dynamodb:DeleteItem (registry)", &[tenant])?;
        self.with(|w| w.registry.remove(tenant));
        Ok(())
    }

    async fn remove_release(
        &self,
        tenant: &str,
        number: u32,
        execution: &str,
    ) -> Result<bool, AwsCallError> {
        let number = number.to_string();
        self.call(
            "dynamodb:DeleteItem (release)",
            &[tenant, &number, execution],
        )?;
        let key = format!("{tenant}#{number}");
        Ok(self.with(|w| {
            let ours = w.releases.get(&key).is_some_and(|e| e == execution);
            if ours {
                w.releases.remove(&key);
            }
            ours
        }))
    }
}

impl Resources for FakeEnv {
    type Ecs = FakeEnv;
    type Efs = FakeEnv;
    type Elb = FakeEnv;
    type Secrets = FakeEnv;
    type Dns = FakeEnv;
    type Documents = FakeEnv;
    type MySql = FakeEnv;
    type State = MemoryState;
    type Registry = FakeEnv;
    fn ecs(&self) -> &FakeEnv {
        self
    }
    fn efs(&self) -> &FakeEnv {
        self
    }
    fn elb(&self) -> &FakeEnv {
        self
    }
    fn secrets(&self) -> &FakeEnv {
        self
    }
    fn dns(&self) -> &FakeEnv {
        self
    }
    fn documents(&self) -> &FakeEnv {
        self
    }
    fn mysql(&self) -> &FakeEnv {
        self
    }
    fn state(&self) -> &MemoryState {
        &self.state
    }
    fn registry(&self) -> &FakeEnv {
        self
    }
}

/// Every environment is the one fake (tests use one environment at a time).
impl Connector for FakeEnv {
    type Ports = FakeEnv;

    async fn connect(&self, _env: &EnvironmentConfig) -> FakeEnv {
        self.clone()
    }
}
