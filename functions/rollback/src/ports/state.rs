//! [`Registry`] on the state table (`DynamoStateStore`'s registry operations).

use super::Registry;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::state::{DynamoStateStore, RegistryRecord, StateStore};

impl Registry for DynamoStateStore {
    async fn lock_owner(&self, tenant: &str) -> Result<Option<String>, AwsCallError> {
        StateStore::lock_owner(self, tenant).await
    }

    async fn is_registered(&self, tenant: &str) -> Result<bool, AwsCallError> {
        Ok(StateStore::registry(self, tenant).await?.is_some())
    }

    async fn claimed_tenants(&self) -> Result<Vec<String>, AwsCallError> {
        StateStore::claimed_tenants(self).await
    }

    async fn update_registry(
        &self,
        tenant: &str,
        record: &RegistryRecord,
    ) -> Result<(), AwsCallError> {
        StateStore::update_registry(self, tenant, record).await
    }

    async fn unregister(&self, tenant: &str, execution: &str) -> Result<bool, AwsCallError> {
        StateStore::unregister(self, tenant, execution).await
    }

    async fn forget_tenant(&self, tenant: &str) -> Result<(), AwsCallError> {
        StateStore::forget_tenant(self, tenant).await
    }

    async fn remove_release(
        &self,
        tenant: &str,
        number: u32,
        execution: &str,
    ) -> Result<bool, AwsCallError> {
        StateStore::remove_release(self, tenant, number, execution).await
    }
}
