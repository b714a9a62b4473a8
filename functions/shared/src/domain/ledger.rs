//! Each run's resource ledger: what the run created or changed, so rollback
//! removes exactly that and nothing else.
//!
//! **Written ahead.** A phase records a resource *before* the call that
//! creates or changes it, naming it the way rollback can find it whether or
//! not the call went through (its name, or for an update the value to
//! restore). A run that crashes between a create and the next step, or whose
//! create was applied but answered with an error, so leaves nothing rollback
//! does not know about; rollback treats a recorded resource that is not there
//! as already gone. The tenant's lock guarantees that nothing else creates a
//! resource of the tenant under that name in the meantime.
//!
//! This is the one place that explains it; the writers (bootstrap, ecs,
//! database, dns, notify, teardown) and the reader (rollback) link here.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a ledger entry records. Stored as its `snake_case` name (the
/// strings in tables written before this type existed are the same), and
/// matched exhaustively by rollback, so a new kind without an undo does not
/// compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    /// An ALB rule priority claimed for the tenant (`id`: the priority).
    PriorityClaim,
    /// An EFS access point (`id`: its root path, then its id).
    EfsAccessPoint,
    /// Task definition revisions (`id`: the family; `previous`: the latest
    /// revision before, so newer ones are this run's).
    TaskDefinition,
    /// A target group (`id`: its name, then its ARN).
    TargetGroup,
    /// A listener rule (`id`: its host, then its ARN).
    ListenerRule,
    /// A listener rule this run changed (`previous`: `priority=…;target_group=…`).
    ListenerRuleUpdate,
    /// An ECS service (`id`: its name, then its ARN).
    Service,
    /// A service rolled to a new task definition (`previous`: the old one).
    ServiceUpdate,
    /// The tenant's database secret (`id`: its name).
    DbSecret,
    /// The tenant's MySQL database.
    MysqlDatabase,
    /// A database kept on removal: moved to the name in `previous`.
    MysqlDatabaseRetained,
    /// The tenant's MySQL user.
    MysqlUser,
    /// The Route53 alias record (`id`: `{zone}/{host}`; `previous`: the alias it had).
    DnsRecord,
    /// The tenant config document (`id`: its key; `previous`: the version it replaced).
    ConfigDocument,
    /// The registry record (`id`: the tenant; `previous`: the record it replaced, JSON).
    RegistryRecord,
    /// A release in the tenant's history (`id`: `{tenant}#{number}`; always created).
    Release,
}

impl LedgerKind {
    /// Every kind, in the order a run writes them.
    pub const ALL: [LedgerKind; 16] = [
        LedgerKind::PriorityClaim,
        LedgerKind::EfsAccessPoint,
        LedgerKind::TaskDefinition,
        LedgerKind::TargetGroup,
        LedgerKind::ListenerRule,
        LedgerKind::ListenerRuleUpdate,
        LedgerKind::Service,
        LedgerKind::ServiceUpdate,
        LedgerKind::DbSecret,
        LedgerKind::MysqlDatabase,
        LedgerKind::MysqlDatabaseRetained,
        LedgerKind::MysqlUser,
        LedgerKind::DnsRecord,
        LedgerKind::ConfigDocument,
        LedgerKind::RegistryRecord,
        LedgerKind::Release,
    ];

    /// The stored name (also the ledger item's sort-key suffix).
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::PriorityClaim => "priority_claim",
            LedgerKind::EfsAccessPoint => "efs_access_point",
            LedgerKind::TaskDefinition => "task_definition",
            LedgerKind::TargetGroup => "target_group",
            LedgerKind::ListenerRule => "listener_rule",
            LedgerKind::ListenerRuleUpdate => "listener_rule_update",
            LedgerKind::Service => "service",
            LedgerKind::ServiceUpdate => "service_update",
            LedgerKind::DbSecret => "db_secret",
            LedgerKind::MysqlDatabase => "mysql_database",
            LedgerKind::MysqlDatabaseRetained => "mysql_database_retained",
            LedgerKind::MysqlUser => "mysql_user",
            LedgerKind::DnsRecord => "dns_record",
            LedgerKind::ConfigDocument => "config_document",
            LedgerKind::RegistryRecord => "registry_record",
            LedgerKind::Release => "release",
        }
    }

    /// The kind stored under `name`, if stepdeploy knows it.
    pub fn parse(name: &str) -> Option<LedgerKind> {
        LedgerKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// A ledger item whose kind this version of stepdeploy does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown ledger kind {0:?}")]
pub struct UnknownKind(pub String);

impl std::str::FromStr for LedgerKind {
    type Err = UnknownKind;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        LedgerKind::parse(name).ok_or_else(|| UnknownKind(name.to_string()))
    }
}

impl fmt::Display for LedgerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One resource a run touched, so rollback removes exactly what the run created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerEntry {
    /// What it is.
    pub kind: LedgerKind,
    /// ARN or id; for an entry written before its create, the name rollback
    /// finds the resource by (see [`LedgerKind`]).
    pub id: String,
    /// `true` if this run created it, `false` if it existed and was updated.
    pub created: bool,
    /// Phase that recorded it.
    pub phase: String,
    /// What rollback needs to restore a pre-existing resource (e.g. the previous task definition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

impl LedgerEntry {
    /// An entry for a resource `phase` is about to create.
    pub fn created(kind: LedgerKind, id: impl Into<String>, phase: &str) -> Self {
        LedgerEntry {
            kind,
            id: id.into(),
            created: true,
            phase: phase.into(),
            previous: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_are_the_serde_names_and_round_trip() {
        for kind in LedgerKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(LedgerKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(LedgerKind::parse("nonsense"), None);
    }
}
