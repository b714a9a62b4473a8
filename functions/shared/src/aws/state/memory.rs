//! An in-memory [`StateStore`] with the same conditional semantics as the
//! DynamoDB one, so the phases' unit tests exercise locks, claims, the
//! registry and the ledger without AWS (feature `testing`).

use super::{
    ClaimOutcome, LedgerEntry, LockHolder, LockOutcome, QueueEntry, RegistryRecord, Release,
    StateStore,
};
use crate::aws_error::AwsCallError;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// The table's contents.
#[derive(Debug, Default)]
pub struct Tables {
    /// `ensure_table` calls.
    pub ensure_calls: u32,
    /// `claimed_priorities` calls.
    pub claimed_queries: u32,
    /// Claims made after the allocator's query: `claimed_priorities` does not see them.
    pub claims_unseen: BTreeSet<u32>,
    /// Locks by tenant.
    pub locks: HashMap<String, LockHolder>,
    /// Priority claims: priority → tenant.
    pub claims: HashMap<u32, String>,
    /// Which run made each claim: priority → execution.
    pub claimed_by: HashMap<u32, String>,
    /// Registry priorities by tenant.
    pub registry: HashMap<String, u32>,
    /// Registry records (last deployments) by tenant.
    pub records: HashMap<String, RegistryRecord>,
    /// Queues by tenant.
    pub queues: HashMap<String, Vec<QueueEntry>>,
    /// Releases by tenant, oldest first.
    pub releases: HashMap<String, Vec<Release>>,
    /// Ledger entries with their execution, in write order.
    pub ledger: Vec<(String, LedgerEntry)>,
}

/// Shared handle; clones see the same tables.
#[derive(Debug, Default, Clone)]
pub struct MemoryState(pub Arc<Mutex<Tables>>);

impl MemoryState {
    /// Runs `f` on the tables.
    pub fn with<T>(&self, f: impl FnOnce(&mut Tables) -> T) -> T {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Every ledger entry, any execution.
    pub fn entries(&self) -> Vec<LedgerEntry> {
        self.with(|t| t.ledger.iter().map(|(_, e)| e.clone()).collect())
    }
}

impl StateStore for MemoryState {
    async fn ensure_table(&self) -> Result<bool, AwsCallError> {
        self.with(|t| t.ensure_calls += 1);
        Ok(false)
    }

    async fn acquire_lock(
        &self,
        tenant: &str,
        owner: &str,
        requested_by: &str,
        now: u64,
        expires_at: u64,
    ) -> Result<LockOutcome, AwsCallError> {
        Ok(self.with(|t| {
            if let Some(holder) = t.locks.get(tenant) {
                if holder.expires_at >= now && holder.owner != owner {
                    return LockOutcome::HeldBy(holder.clone());
                }
            }
            t.locks.insert(
                tenant.into(),
                LockHolder {
                    owner: owner.into(),
                    requested_by: requested_by.into(),
                    expires_at,
                },
            );
            LockOutcome::Acquired
        }))
    }

    async fn release_lock(&self, tenant: &str, owner: &str) -> Result<bool, AwsCallError> {
        Ok(self.with(|t| {
            let ours = t.locks.get(tenant).is_some_and(|h| h.owner == owner);
            if ours {
                t.locks.remove(tenant);
            }
            ours
        }))
    }

    async fn claimed_priorities(&self) -> Result<BTreeSet<u32>, AwsCallError> {
        Ok(self.with(|t| {
            t.claimed_queries += 1;
            t.claims
                .keys()
                .filter(|p| !t.claims_unseen.contains(p))
                .copied()
                .collect()
        }))
    }

    async fn tenant_priority(&self, tenant: &str) -> Result<Option<u32>, AwsCallError> {
        Ok(self.with(|t| t.registry.get(tenant).copied()))
    }

    async fn claim_priority(
        &self,
        priority: u32,
        tenant: &str,
        owner: &str,
    ) -> Result<ClaimOutcome, AwsCallError> {
        Ok(self.with(|t| match t.claims.get(&priority) {
            Some(holder) if holder == tenant => {
                if t.claimed_by.get(&priority).is_some_and(|by| by == owner) {
                    ClaimOutcome::ClaimedEarlier
                } else {
                    ClaimOutcome::AlreadyOurs
                }
            }
            Some(holder) => ClaimOutcome::TakenBy(holder.clone()),
            None => {
                t.claims.insert(priority, tenant.into());
                t.claimed_by.insert(priority, owner.into());
                t.registry.insert(tenant.into(), priority);
                ClaimOutcome::Claimed
            }
        }))
    }

    async fn release_priority(&self, priority: u32, tenant: &str) -> Result<(), AwsCallError> {
        self.with(|t| {
            if t.claims
                .get(&priority)
                .is_some_and(|holder| holder == tenant)
            {
                t.claims.remove(&priority);
                t.claimed_by.remove(&priority);
                t.registry.remove(tenant);
            }
        });
        Ok(())
    }

    async fn release_claim_of(
        &self,
        tenant: &str,
        owner: &str,
    ) -> Result<Option<u32>, AwsCallError> {
        Ok(self.with(|t| {
            let priority = *t.registry.get(tenant)?;
            if t.claims.get(&priority).is_some_and(|h| h == tenant)
                && t.claimed_by.get(&priority).is_some_and(|by| by == owner)
            {
                t.claims.remove(&priority);
                t.claimed_by.remove(&priority);
                t.registry.remove(tenant);
                Some(priority)
            } else {
                None
            }
        }))
    }

    async fn record(&self, execution: &str, entry: &LedgerEntry) -> Result<(), AwsCallError> {
        self.with(|t| t.ledger.push((execution.into(), entry.clone())));
        Ok(())
    }

    async fn ledger(&self, execution: &str) -> Result<Vec<LedgerEntry>, AwsCallError> {
        Ok(self.with(|t| {
            t.ledger
                .iter()
                .filter(|(e, _)| e == execution)
                .map(|(_, l)| l.clone())
                .collect()
        }))
    }

    async fn lock_owner(&self, tenant: &str) -> Result<Option<String>, AwsCallError> {
        Ok(self.with(|t| t.locks.get(tenant).map(|h| h.owner.clone())))
    }

    async fn claimed_tenants(&self) -> Result<Vec<String>, AwsCallError> {
        Ok(self.with(|t| {
            let tenants: BTreeSet<String> = t.claims.values().cloned().collect();
            tenants.into_iter().collect()
        }))
    }

    async fn registry(&self, tenant: &str) -> Result<Option<RegistryRecord>, AwsCallError> {
        Ok(self.with(|t| t.records.get(tenant).cloned()))
    }

    async fn update_registry(
        &self,
        tenant: &str,
        record: &RegistryRecord,
    ) -> Result<(), AwsCallError> {
        self.with(|t| t.records.insert(tenant.into(), record.clone()));
        Ok(())
    }

    async fn unregister(&self, tenant: &str, execution: &str) -> Result<bool, AwsCallError> {
        Ok(self.with(|t| {
            let ours = t
                .records
                .get(tenant)
                .is_some_and(|r| r.last_execution == execution);
            if ours {
                t.records.remove(tenant);
            }
            ours
        }))
    }

    async fn forget_tenant(&self, tenant: &str) -> Result<(), AwsCallError> {
        self.with(|t| {
            t.records.remove(tenant);
            t.registry.remove(tenant);
        });
        Ok(())
    }

    async fn enqueue(&self, tenant: &str, entry: &QueueEntry) -> Result<u64, AwsCallError> {
        Ok(self.with(|t| {
            let queue = t.queues.entry(tenant.into()).or_default();
            match queue.iter_mut().find(|e| e.execution == entry.execution) {
                Some(there) => {
                    there.last_seen = entry.last_seen;
                    there.enqueued_at
                }
                None => {
                    queue.push(entry.clone());
                    entry.enqueued_at
                }
            }
        }))
    }

    async fn queue(&self, tenant: &str) -> Result<Vec<QueueEntry>, AwsCallError> {
        Ok(self.with(|t| {
            let mut queue = t.queues.get(tenant).cloned().unwrap_or_default();
            queue.sort_by(|a, b| (a.enqueued_at, &a.execution).cmp(&(b.enqueued_at, &b.execution)));
            queue
        }))
    }

    async fn dequeue(&self, tenant: &str, execution: &str) -> Result<(), AwsCallError> {
        self.with(|t| {
            if let Some(queue) = t.queues.get_mut(tenant) {
                queue.retain(|e| e.execution != execution);
            }
        });
        Ok(())
    }

    async fn latest_release(&self, tenant: &str) -> Result<Option<Release>, AwsCallError> {
        Ok(self.with(|t| t.releases.get(tenant).and_then(|r| r.last().cloned())))
    }

    async fn release(&self, tenant: &str, number: u32) -> Result<Option<Release>, AwsCallError> {
        Ok(self.with(|t| {
            t.releases
                .get(tenant)
                .and_then(|r| r.iter().find(|r| r.number == number).cloned())
        }))
    }

    async fn releases(&self, tenant: &str) -> Result<Vec<Release>, AwsCallError> {
        Ok(self.with(|t| t.releases.get(tenant).cloned().unwrap_or_default()))
    }

    async fn add_release(&self, tenant: &str, release: &Release) -> Result<bool, AwsCallError> {
        Ok(self.with(|t| {
            let list = t.releases.entry(tenant.into()).or_default();
            if list.iter().any(|r| r.number == release.number) {
                return false;
            }
            list.push(release.clone());
            list.sort_by_key(|r| r.number);
            true
        }))
    }

    async fn remove_release(
        &self,
        tenant: &str,
        number: u32,
        execution: &str,
    ) -> Result<bool, AwsCallError> {
        Ok(self.with(|t| {
            let Some(list) = t.releases.get_mut(tenant) else {
                return false;
            };
            let before = list.len();
            list.retain(|r| !(r.number == number && r.execution == execution));
            list.len() != before
        }))
    }
}
