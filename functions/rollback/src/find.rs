//! Name → ids: the resources a ledger entry names (written ahead of a create,
//! by the name rollback can find it by; see `stepdeploy_shared::ledger`), and
//! teardown's inventory of everything a tenant has. Listings are read to
//! their last page.

use crate::ports::{
    DnsResources, EcsResources, EfsResources, ElbResources, MySqlAdmin, Resources, SecretResources,
};
use crate::scope::TenantScope;
use crate::undo::checked;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::ledger::{LedgerEntry, LedgerKind};
use stepdeploy_shared::state::StateStore;

/// Why the inventory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
    /// The tenant's MySQL objects could not be looked at.
    #[error("mysql {database}: {reason}")]
    MySql {
        /// The tenant's database.
        database: String,
        /// Why.
        reason: String,
    },
}

/// The access points of `file_system` rooted at `path` (not being deleted), every page.
pub async fn access_points(
    efs: &impl EfsResources,
    file_system: &str,
    path: &str,
) -> Result<Vec<String>, AwsCallError> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page = efs.access_points_page(file_system, path, token).await?;
        found.extend(page.items);
        match page.next {
            Some(next) => token = Some(next),
            None => return Ok(found),
        }
    }
}

/// The revision number at the end of a task definition ARN.
fn revision(arn: &str) -> Option<u32> {
    arn.rsplit_once(':').and_then(|(_, r)| r.parse().ok())
}

/// The ACTIVE revisions of exactly `family` newer than `after` (an ARN),
/// every page.
pub async fn task_definitions(
    ecs: &impl EcsResources,
    family: &str,
    after: Option<&str>,
) -> Result<Vec<String>, AwsCallError> {
    let after = after.and_then(revision).unwrap_or(0);
    // The listing's family prefix also matches longer families: keep this one's.
    let exact = format!("task-definition/{family}:");
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page = ecs.task_definitions_page(family, token).await?;
        found.extend(
            page.items
                .into_iter()
                .filter(|arn| arn.contains(&exact))
                .filter(|arn| revision(arn).is_some_and(|r| r > after)),
        );
        match page.next {
            Some(next) => token = Some(next),
            None => return Ok(found),
        }
    }
}

/// The access points an entry stands for: by root path (`/tenant`), or its id.
pub async fn access_points_of(
    scope: &TenantScope,
    efs: &impl EfsResources,
    entry: &LedgerEntry,
) -> Result<Vec<String>, AwsCallError> {
    if entry.id.starts_with('/') {
        access_points(efs, &scope.env.efs_id, &entry.id).await
    } else {
        Ok(vec![entry.id.clone()])
    }
}

/// The task definitions an entry stands for: the run's revisions of a
/// family (every one newer than `previous`), or one ARN.
pub async fn task_definitions_of(
    ecs: &impl EcsResources,
    entry: &LedgerEntry,
) -> Result<Vec<String>, AwsCallError> {
    if entry.id.contains(":task-definition/") {
        Ok(vec![entry.id.clone()])
    } else {
        task_definitions(ecs, &entry.id, entry.previous.as_deref()).await
    }
}

/// The target groups an entry stands for: by name, or one ARN.
pub async fn target_groups_of(
    elb: &impl ElbResources,
    entry: &LedgerEntry,
) -> Result<Vec<String>, AwsCallError> {
    if entry.id.starts_with("arn:") {
        Ok(vec![entry.id.clone()])
    } else {
        elb.target_groups_named(&entry.id).await
    }
}

/// The listener rules an entry stands for: by host, or one ARN.
pub async fn listener_rules_of(
    scope: &TenantScope,
    elb: &impl ElbResources,
    entry: &LedgerEntry,
) -> Result<Vec<String>, AwsCallError> {
    if entry.id.starts_with("arn:") {
        Ok(vec![entry.id.clone()])
    } else {
        rules_on_every_listener(scope, elb, &entry.id).await
    }
}

/// The rules for `host` on each of the environment's load balancers' listeners
/// (the tenant's is the one its priority says, but a rule left on another by
/// an earlier placement is the tenant's too).
async fn rules_on_every_listener(
    scope: &TenantScope,
    elb: &impl ElbResources,
    host: &str,
) -> Result<Vec<String>, AwsCallError> {
    // The tenant's own load balancer comes first in the list.
    let mut rules = Vec::new();
    for lb in scope.env.load_balancers() {
        rules.extend(elb.rules_for_host(&lb.listener_arn, host).await?);
    }
    Ok(rules)
}

fn found(kind: LedgerKind, id: impl Into<String>) -> LedgerEntry {
    LedgerEntry::created(kind, id, "teardown")
}

/// Every resource the tenant has, in the order they must go (teardown
/// undoes them one by one). Only what exists, so the report names only what
/// was removed; task definitions and the access point are entries by name,
/// which undo looks up (every page) when it removes them. `retain_database_as`:
/// where the tables go instead of being dropped (a removal that needed a quorum).
pub async fn inventory<P: Resources>(
    scope: &TenantScope,
    ports: &P,
    retain_database_as: Option<String>,
) -> Result<Vec<LedgerEntry>, FindError> {
    let (env, names) = (&scope.env, &scope.names);
    let mut found_now = Vec::new();
    let fqdn = format!("{}.", names.host);
    if ports
        .dns()
        .a_record(&env.hosted_zone_id, &fqdn)
        .await?
        .is_some()
    {
        let id = format!("{}/{}", env.hosted_zone_id, names.host);
        found_now.push(found(LedgerKind::DnsRecord, id));
    }
    found_now.extend(database_entries(scope, ports.mysql(), retain_database_as).await?);
    if let Some(arn) = ports.secrets().live_secret(&names.db_secret).await? {
        found_now.push(found(LedgerKind::DbSecret, arn));
    }
    if ports
        .ecs()
        .service_active(&env.cluster, &names.service)
        .await?
    {
        found_now.push(found(LedgerKind::Service, names.service.clone()));
    }
    let rules = rules_on_every_listener(scope, ports.elb(), &names.host).await?;
    found_now.extend(
        rules
            .into_iter()
            .map(|arn| found(LedgerKind::ListenerRule, arn)),
    );
    let groups = ports.elb().target_groups_named(&names.target_group).await?;
    found_now.extend(
        groups
            .into_iter()
            .map(|arn| found(LedgerKind::TargetGroup, arn)),
    );
    found_now.push(found(LedgerKind::TaskDefinition, names.task_family.clone()));
    found_now.push(found(LedgerKind::EfsAccessPoint, names.efs_path.clone()));
    if let Some(priority) = ports.state().tenant_priority(scope.tenant.as_str()).await? {
        found_now.push(found(LedgerKind::PriorityClaim, priority.to_string()));
    }
    Ok(found_now)
}

/// The tenant's MySQL user and database, if they exist.
async fn database_entries(
    scope: &TenantScope,
    mysql: &impl MySqlAdmin,
    retain_as: Option<String>,
) -> Result<Vec<LedgerEntry>, FindError> {
    let names = &scope.names;
    let failed = |reason: String| FindError::MySql {
        database: names.database.clone(),
        reason,
    };
    let database = checked(&names.database).map_err(|e| failed(e.to_string()))?;
    let user = checked(&names.db_user).map_err(|e| failed(e.to_string()))?;
    let db = mysql
        .inspect(&scope.env.rds, database, user)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let mut entries = Vec::new();
    if db.user_exists {
        entries.push(found(LedgerKind::MysqlUser, user));
    }
    match (db.database_exists, retain_as) {
        (false, _) => {}
        // Where removal needs a quorum it is recoverable: the tables move to
        // the retained database (docs/operating.md, "Removing a tenant from prod, and restoring it").
        (true, Some(retained)) => entries.push(LedgerEntry {
            previous: Some(retained),
            ..found(LedgerKind::MysqlDatabaseRetained, database)
        }),
        (true, None) => entries.push(found(LedgerKind::MysqlDatabase, database)),
    }
    Ok(entries)
}
