//! Undoing one ledger entry: one arm per [`LedgerKind`], each a call or two
//! on its port. The match is exhaustive, so a new kind without an undo does
//! not compile. An entry written ahead by name is looked up first
//! ([`crate::find`]); what is not there counts as already gone.

use crate::find;
use crate::ports::{
    DnsResources, DocumentStore, EcsResources, EfsResources, ElbResources, MySqlAdmin, MySqlError,
    Registry, Removal, Resources, SecretResources,
};
use crate::scope::TenantScope;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::ledger::{LedgerEntry, LedgerKind};
use stepdeploy_shared::state::{RegistryRecord, StateStore};

/// Days a removed tenant secret can be restored (Secrets Manager's minimum is 7).
pub const SECRET_RECOVERY_DAYS: i64 = stepdeploy_shared::config::RETENTION_DAYS;

/// Outcome of undoing one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undone {
    /// Deleted.
    Removed,
    /// Put back as it was before the run.
    Restored,
    /// Nothing to do.
    AlreadyGone,
}

/// Why an entry could not be undone (the caller adds its kind and id).
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
    /// MySQL could not be reached or refused.
    #[error(transparent)]
    MySql(#[from] MySqlError),
    /// The entry itself says no (nothing to restore, a name unfit for SQL, …).
    #[error("{0}")]
    Entry(String),
}

impl From<Removal> for Undone {
    fn from(removal: Removal) -> Self {
        match removal {
            Removal::Removed => Undone::Removed,
            Removal::AlreadyGone => Undone::AlreadyGone,
        }
    }
}

/// Removes every resource an entry stands for, one by one: removed if
/// anything was there, already gone otherwise.
async fn remove_each(
    ids: Vec<String>,
    remove: impl AsyncFn(&str) -> Result<Removal, AwsCallError>,
) -> Result<Undone, UndoError> {
    let mut undone = Undone::AlreadyGone;
    for id in &ids {
        if remove(id).await? == Removal::Removed {
            undone = Undone::Removed;
        }
    }
    Ok(undone)
}

/// Names in SQL come from validated tenants: `[a-z0-9_]` only.
pub(crate) fn checked(name: &str) -> Result<&str, UndoError> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(name)
    } else {
        Err(UndoError::Entry(format!("refusing to use {name:?} in SQL")))
    }
}

/// Only a resource the run created is removed (`created`), only one it
/// changed is restored (`updated`).
fn created(entry: &LedgerEntry) -> Result<&LedgerEntry, UndoError> {
    created_is(entry, true)
}

fn updated(entry: &LedgerEntry) -> Result<&LedgerEntry, UndoError> {
    created_is(entry, false)
}

fn created_is(entry: &LedgerEntry, created: bool) -> Result<&LedgerEntry, UndoError> {
    if entry.created == created {
        Ok(entry)
    } else {
        Err(UndoError::Entry(format!(
            "no undo for a ledger entry of kind {} (created: {})",
            entry.kind, entry.created
        )))
    }
}

fn previous<'a>(entry: &'a LedgerEntry, missing: &str) -> Result<&'a str, UndoError> {
    entry
        .previous
        .as_deref()
        .ok_or_else(|| UndoError::Entry(missing.to_string()))
}

/// Undoes one ledger entry of `scope`'s run.
pub async fn undo<P: Resources>(
    scope: &TenantScope,
    ports: &P,
    entry: &LedgerEntry,
) -> Result<Undone, UndoError> {
    let (env, id) = (&scope.env, entry.id.as_str());
    let (efs, ecs, elb, mysql) = (ports.efs(), ports.ecs(), ports.elb(), ports.mysql());
    match entry.kind {
        LedgerKind::PriorityClaim => release_claim(scope, ports.state(), created(entry)?).await,
        LedgerKind::EfsAccessPoint => {
            let ids = find::access_points_of(scope, efs, created(entry)?).await?;
            remove_each(ids, async |ap| efs.delete_access_point(ap).await).await
        }
        LedgerKind::TaskDefinition => {
            let arns = find::task_definitions_of(ecs, created(entry)?).await?;
            remove_each(arns, async |a| ecs.deregister_task_definition(a).await).await
        }
        LedgerKind::TargetGroup => {
            let arns = find::target_groups_of(elb, created(entry)?).await?;
            remove_each(arns, async |arn| elb.delete_target_group(arn).await).await
        }
        LedgerKind::ListenerRule => {
            let arns = find::listener_rules_of(scope, elb, created(entry)?).await?;
            remove_each(arns, async |arn| elb.delete_rule(arn).await).await
        }
        LedgerKind::ListenerRuleUpdate => restore_rule(elb, updated(entry)?).await,
        LedgerKind::Service => {
            created(entry)?;
            Ok(ecs.delete_service(&env.cluster, id).await?.into())
        }
        LedgerKind::ServiceUpdate => {
            let task_definition =
                previous(updated(entry)?, "no previous task definition recorded")?;
            ecs.restore_service(&env.cluster, id, task_definition)
                .await?;
            Ok(Undone::Restored)
        }
        LedgerKind::DbSecret => {
            created(entry)?;
            let removal = ports.secrets().schedule_deletion(id, SECRET_RECOVERY_DAYS);
            Ok(removal.await?.into())
        }
        LedgerKind::MysqlUser => {
            let user = checked(&created(entry)?.id)?;
            mysql.drop_user(&env.rds, user).await?;
            Ok(Undone::Removed)
        }
        LedgerKind::MysqlDatabaseRetained => retain_database(scope, mysql, created(entry)?).await,
        LedgerKind::MysqlDatabase => {
            let database = checked(&created(entry)?.id)?;
            mysql.drop_database(&env.rds, database).await?;
            Ok(Undone::Removed)
        }
        LedgerKind::DnsRecord => restore_dns(scope, ports.dns(), entry).await,
        LedgerKind::ConfigDocument => restore_document(scope, ports.documents(), entry).await,
        LedgerKind::RegistryRecord => restore_registry(scope, ports.registry(), entry).await,
        LedgerKind::Release => remove_release(scope, ports.registry(), created(entry)?).await,
    }
}

/// notify's release (`{tenant}#{number}`): taken back if this run wrote it.
async fn remove_release(
    scope: &TenantScope,
    registry: &impl Registry,
    entry: &LedgerEntry,
) -> Result<Undone, UndoError> {
    let (tenant, number) = entry
        .id
        .rsplit_once('#')
        .and_then(|(tenant, n)| Some((tenant, n.parse::<u32>().ok()?)))
        .ok_or_else(|| UndoError::Entry(format!("not a release: {}", entry.id)))?;
    Ok(
        if registry
            .remove_release(tenant, number, &scope.execution)
            .await?
        {
            Undone::Removed
        } else {
            Undone::AlreadyGone
        },
    )
}

/// The ALB priority back to the pool (the claim and the registry's record of it).
async fn release_claim(
    scope: &TenantScope,
    state: &impl StateStore,
    entry: &LedgerEntry,
) -> Result<Undone, UndoError> {
    let priority: u32 = entry
        .id
        .parse()
        .map_err(|_| UndoError::Entry(format!("not a priority: {}", entry.id)))?;
    state
        .release_priority(priority, scope.tenant.as_str())
        .await?;
    Ok(Undone::Removed)
}

/// Teardown in an approval environment keeps the data: the tables move to
/// the retained database named in `previous`.
async fn retain_database(
    scope: &TenantScope,
    mysql: &impl MySqlAdmin,
    entry: &LedgerEntry,
) -> Result<Undone, UndoError> {
    let retained_as = previous(entry, "no retained name for the database")?;
    let (database, retained_as) = (checked(&entry.id)?, checked(retained_as)?);
    mysql
        .retain_database(&scope.env.rds, database, retained_as)
        .await?;
    Ok(Undone::Removed)
}

/// notify's config document: deleted, or its previous version copied back.
async fn restore_document(
    scope: &TenantScope,
    documents: &impl DocumentStore,
    entry: &LedgerEntry,
) -> Result<Undone, UndoError> {
    let bucket = scope.env.config_bucket.as_str();
    match (entry.created, entry.previous.as_deref()) {
        (false, Some(version)) => {
            documents
                .restore_version(bucket, &entry.id, version)
                .await?;
            Ok(Undone::Restored)
        }
        _ => {
            documents.delete(bucket, &entry.id).await?;
            Ok(Undone::Removed)
        }
    }
}

/// A listener rule this run changed: its priority and forward target back
/// (`previous` = `priority=P;target_group=ARN[,ARN]`).
async fn restore_rule(elb: &impl ElbResources, entry: &LedgerEntry) -> Result<Undone, UndoError> {
    let previous = entry.previous.as_deref().unwrap_or_default();
    let field = |name: &str| {
        previous
            .split(';')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_default()
            .to_string()
    };
    if let Ok(priority) = field("priority").parse::<i32>() {
        elb.restore_rule_priority(&entry.id, priority).await?;
    }
    let target_group = field("target_group");
    if let Some(tg) = target_group.split(',').next().filter(|t| !t.is_empty()) {
        elb.restore_rule_forward(&entry.id, tg).await?;
    }
    Ok(Undone::Restored)
}

/// The tenant's alias record: deleted if this run created it, pointed back
/// at the alias it had otherwise.
async fn restore_dns(
    scope: &TenantScope,
    dns: &impl DnsResources,
    entry: &LedgerEntry,
) -> Result<Undone, UndoError> {
    let fqdn = format!("{}.", scope.names.host);
    let zone = scope.env.hosted_zone_id.as_str();
    let target = match (entry.created, entry.previous.as_deref()) {
        (false, Some(previous)) => Some(previous),
        _ => None,
    };
    let existing = dns.a_record(zone, &fqdn).await?;
    match (target, existing) {
        (None, None) => Ok(Undone::AlreadyGone),
        (None, Some(record)) => {
            dns.delete_record(zone, record).await?;
            Ok(Undone::Removed)
        }
        (Some(previous), _) => {
            let cloudfront = scope.env.cloudfront.hosted_zone_id.as_str();
            dns.upsert_alias(zone, &fqdn, previous, cloudfront).await?;
            Ok(Undone::Restored)
        }
    }
}

/// notify's registry record: put back as it was, or taken back if the run
/// wrote the tenant's first one.
async fn restore_registry(
    scope: &TenantScope,
    registry: &impl Registry,
    entry: &LedgerEntry,
) -> Result<Undone, UndoError> {
    match (entry.created, entry.previous.as_deref()) {
        (false, Some(previous)) => {
            let record: RegistryRecord = serde_json::from_str(previous)
                .map_err(|e| UndoError::Entry(format!("previous registry record: {e}")))?;
            registry.update_registry(&entry.id, &record).await?;
            Ok(Undone::Restored)
        }
        _ => Ok(if registry.unregister(&entry.id, &scope.execution).await? {
            Undone::Removed
        } else {
            Undone::AlreadyGone
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{secret_arn, FakeEnv, FakeRule};
    use stepdeploy_shared::state::StateStore;

    fn scope() -> TenantScope {
        TenantScope::from(&stepdeploy_shared::plan::sample("wordpress:6.7", 140))
    }

    fn td(family: &str, revision: u32) -> String {
        format!("arn:aws:ecs:eu-west-1:1:task-definition/{family}:{revision}")
    }

    fn changed(kind: LedgerKind, id: &str, previous: &str) -> LedgerEntry {
        LedgerEntry {
            created: false,
            previous: Some(previous.into()),
            ..LedgerEntry::created(kind, id, "test")
        }
    }

    /// goldencrust in sit with one of everything, as a run leaves it.
    async fn deployed() -> FakeEnv {
        let s = scope();
        let n = &s.names;
        let fake = FakeEnv::default();
        fake.with(|w| {
            w.access_points = vec![("fsap-1".into(), n.efs_path.clone())];
            w.task_definitions = vec![td(&n.task_family, 1), td(&n.task_family, 2)];
            w.services.insert(n.service.clone(), td(&n.task_family, 2));
            w.target_groups = vec![(n.target_group.clone(), "arn:tg".into())];
            w.rules = vec![FakeRule {
                arn: "arn:rule".into(),
                host: n.host.clone(),
                priority: 140,
                target_group: "arn:tg".into(),
            }];
            w.secrets.insert(n.db_secret.clone(), false);
            w.records
                .insert(format!("{}.", n.host), "d1.cloudfront.net".into());
            w.documents.insert(n.config_key.clone(), "v2".into());
            w.db.database_exists = true;
            w.db.user_exists = true;
            w.releases
                .insert(format!("{}#3", s.tenant), s.execution.clone());
            w.registry.insert(
                s.tenant.to_string(),
                RegistryRecord {
                    image: "wordpress:6.7".into(),
                    status: "active".into(),
                    last_execution: s.execution.clone(),
                    updated_at: "2026-11-22T10:00:00Z".into(),
                    config_key: n.config_key.clone(),
                    requested_by: "jane".into(),
                    labels: Default::default(),
                },
            );
        });
        fake.state
            .claim_priority(140, s.tenant.as_str(), &s.execution)
            .await
            .expect("claimed");
        fake
    }

    /// An entry of each kind as the phases write it, and the call that undoes it.
    fn example(kind: LedgerKind) -> (LedgerEntry, &'static str) {
        let s = scope();
        let n = &s.names;
        let created = |id: &str| LedgerEntry::created(kind, id, "test");
        match kind {
            LedgerKind::PriorityClaim => (created("140"), ""),
            LedgerKind::EfsAccessPoint => (created(&n.efs_path), "efs:DeleteAccessPoint"),
            LedgerKind::TaskDefinition => (
                LedgerEntry {
                    previous: Some(td(&n.task_family, 1)),
                    ..created(&n.task_family)
                },
                "ecs:DeregisterTaskDefinition",
            ),
            LedgerKind::TargetGroup => (created(&n.target_group), "elbv2:DeleteTargetGroup"),
            LedgerKind::ListenerRule => (created(&n.host), "elbv2:DeleteRule"),
            LedgerKind::ListenerRuleUpdate => (
                changed(
                    kind,
                    "arn:rule",
                    "priority=7;target_group=arn:tg-old,arn:tg-b",
                ),
                "elbv2:ModifyRule",
            ),
            LedgerKind::Service => (created(&n.service), "ecs:DeleteService"),
            LedgerKind::ServiceUpdate => (
                changed(kind, &n.service, &td(&n.task_family, 1)),
                "ecs:UpdateService",
            ),
            LedgerKind::DbSecret => (created(&n.db_secret), "secretsmanager:DeleteSecret"),
            LedgerKind::MysqlDatabase => (created(&n.database), "mysql:DropDatabase"),
            LedgerKind::MysqlDatabaseRetained => (
                LedgerEntry {
                    previous: Some("goldencrust_db_rm20261130t101502".into()),
                    ..created(&n.database)
                },
                "mysql:RetainDatabase",
            ),
            LedgerKind::MysqlUser => (created(&n.db_user), "mysql:DropUser"),
            LedgerKind::DnsRecord => (
                created(&format!("{}/{}", s.env.hosted_zone_id, n.host)),
                "route53:ChangeResourceRecordSets",
            ),
            LedgerKind::ConfigDocument => (created(&n.config_key), "s3:DeleteObject"),
            LedgerKind::RegistryRecord => (
                created(s.tenant.as_str()),
                "dynamodb:UpdateItem (unregister)",
            ),
            LedgerKind::Release => (
                created(&format!("{}#3", s.tenant)),
                "dynamodb:DeleteItem (release)",
            ),
        }
    }

    #[tokio::test]
    async fn every_kind_is_undone_through_its_port() {
        for kind in LedgerKind::ALL {
            let fake = deployed().await;
            let (entry, call) = example(kind);
            let undone = undo(&scope(), &fake, &entry)
                .await
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            let expected = if entry.created {
                Undone::Removed
            } else {
                Undone::Restored
            };
            assert_eq!(undone, expected, "{kind}");
            if kind == LedgerKind::PriorityClaim {
                assert!(fake.state.with(|t| t.claims.is_empty()), "claim released");
            } else {
                assert_eq!(fake.calls_to(call).len(), 1, "{kind}: {:?}", fake.calls());
            }
        }
    }

    #[tokio::test]
    async fn what_a_run_created_and_is_not_there_is_already_gone() {
        let fake = FakeEnv::default();
        for kind in [
            LedgerKind::EfsAccessPoint,
            LedgerKind::TaskDefinition,
            LedgerKind::TargetGroup,
            LedgerKind::ListenerRule,
            LedgerKind::Service,
            LedgerKind::DbSecret,
            LedgerKind::DnsRecord,
            LedgerKind::RegistryRecord,
            LedgerKind::Release,
        ] {
            let (entry, _) = example(kind);
            let undone = undo(&scope(), &fake, &entry).await.expect("answered");
            assert_eq!(undone, Undone::AlreadyGone, "{kind}");
        }
        // Nothing was there, so nothing was deleted.
        assert!(fake.calls_to("elbv2:DeleteTargetGroup").is_empty());
        assert!(fake.calls_to("route53:ChangeResourceRecordSets").is_empty());
    }

    #[tokio::test]
    async fn entries_by_name_find_every_page_and_only_the_runs_resources() {
        let s = scope();
        let family = &s.names.task_family;
        let fake = FakeEnv::default();
        fake.with(|w| {
            // Five access points on the file system, the tenant's on pages 1 and 3.
            w.access_points = [
                ("fsap-a", "/goldencrust"),
                ("fsap-b", "/other"),
                ("fsap-c", "/another"),
                ("fsap-d", "/more"),
                ("fsap-e", "/goldencrust"),
            ]
            .map(|(id, p)| (id.to_string(), p.to_string()))
            .to_vec();
            // Revisions 1 (before the run), 2 and 3 (the run's), and a longer family.
            w.task_definitions = vec![
                td(family, 1),
                td(&format!("{family}2"), 5),
                td(family, 2),
                td(family, 3),
            ];
        });
        let ap = LedgerEntry::created(LedgerKind::EfsAccessPoint, "/goldencrust", "ecs");
        assert_eq!(undo(&s, &fake, &ap).await.expect("undone"), Undone::Removed);
        assert_eq!(fake.calls_to("efs:DescribeAccessPoints").len(), 3);
        assert_eq!(
            fake.calls_to("efs:DeleteAccessPoint"),
            [
                "efs:DeleteAccessPoint fsap-a",
                "efs:DeleteAccessPoint fsap-e"
            ]
        );
        let tds = LedgerEntry {
            previous: Some(td(family, 1)),
            ..LedgerEntry::created(LedgerKind::TaskDefinition, family.as_str(), "ecs")
        };
        assert_eq!(
            undo(&s, &fake, &tds).await.expect("undone"),
            Undone::Removed
        );
        assert_eq!(fake.calls_to("ecs:ListTaskDefinitions").len(), 2);
        assert_eq!(
            fake.calls_to("ecs:DeregisterTaskDefinition"),
            [
                format!("ecs:DeregisterTaskDefinition {}", td(family, 2)),
                format!("ecs:DeregisterTaskDefinition {}", td(family, 3)),
            ]
        );
        // An entry with the resource's id is undone directly.
        let by_id = LedgerEntry::created(LedgerKind::TaskDefinition, td(family, 1), "ecs");
        assert_eq!(
            undo(&s, &fake, &by_id).await.expect("undone"),
            Undone::Removed
        );
        assert_eq!(
            fake.calls_to("ecs:ListTaskDefinitions").len(),
            2,
            "no listing"
        );
    }

    #[tokio::test]
    async fn what_existed_before_the_run_is_put_back() {
        let s = scope();
        let fake = deployed().await;
        let record = serde_json::json!({
            "image": "wordpress:6.6", "status": "active", "last_execution": "arn:exec:0",
            "updated_at": "2026-11-01T10:00:00Z", "config_key": s.names.config_key,
            "requested_by": "joe"
        });
        for entry in [
            changed(LedgerKind::DnsRecord, "zone/host", "old.cloudfront.net"),
            changed(LedgerKind::ConfigDocument, &s.names.config_key, "v1"),
            changed(
                LedgerKind::RegistryRecord,
                s.tenant.as_str(),
                &record.to_string(),
            ),
        ] {
            assert_eq!(
                undo(&s, &fake, &entry).await.expect("restored"),
                Undone::Restored,
                "{}",
                entry.kind
            );
        }
        fake.with(|w| {
            assert_eq!(
                w.records[&format!("{}.", s.names.host)],
                "old.cloudfront.net"
            );
            assert_eq!(w.documents[&s.names.config_key], "v1");
            assert_eq!(w.registry[s.tenant.as_str()].last_execution, "arn:exec:0");
        });
        let (rule, _) = example(LedgerKind::ListenerRuleUpdate);
        undo(&s, &fake, &rule).await.expect("restored");
        assert_eq!(
            fake.calls_to("elbv2:SetRulePriorities"),
            ["elbv2:SetRulePriorities arn:rule 7"]
        );
        assert_eq!(
            fake.calls_to("elbv2:ModifyRule"),
            ["elbv2:ModifyRule arn:rule arn:tg-old"]
        );
    }

    #[tokio::test]
    async fn entries_that_say_no_are_errors_before_any_call() {
        let s = scope();
        let fake = deployed().await;
        let cases = [
            (
                changed(LedgerKind::Service, &s.names.service, "x"),
                "no undo for a ledger entry of kind service (created: false)",
            ),
            (
                LedgerEntry::created(LedgerKind::ServiceUpdate, &s.names.service, "ecs"),
                "no undo for a ledger entry of kind service_update (created: true)",
            ),
            (
                LedgerEntry {
                    created: false,
                    ..LedgerEntry::created(LedgerKind::ServiceUpdate, &s.names.service, "ecs")
                },
                "no previous task definition recorded",
            ),
            (
                LedgerEntry::created(LedgerKind::MysqlUser, "robert'); DROP", "database"),
                "refusing to use \"robert'); DROP\" in SQL",
            ),
            (
                LedgerEntry::created(LedgerKind::PriorityClaim, "high", "bootstrap"),
                "not a priority: high",
            ),
        ];
        for (entry, message) in cases {
            let err = undo(&s, &fake, &entry).await.expect_err(message);
            assert_eq!(err.to_string(), message);
        }
        assert!(fake.calls().is_empty(), "{:?}", fake.calls());
    }

    #[tokio::test]
    async fn a_failed_call_is_the_reason() {
        let s = scope();
        let fake = deployed().await;
        fake.with(|w| w.failing.insert("secretsmanager:DeleteSecret"));
        let (entry, _) = example(LedgerKind::DbSecret);
        let err = undo(&s, &fake, &entry).await.expect_err("fails");
        assert!(
            err.to_string()
                .starts_with("secretsmanager:DeleteSecret failed: injected failure"),
            "{err}"
        );
        // The scheduled secret's name is what teardown's inventory finds.
        assert_eq!(
            fake.live_secret(&s.names.db_secret)
                .await
                .expect("answered"),
            Some(secret_arn(&s.names.db_secret))
        );
    }
}
