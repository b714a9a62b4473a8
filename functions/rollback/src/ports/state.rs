//! [`Registry`] on the state table (`DynamoStateStore`'s registry operations).

use super::Registry;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::state::{DynamoStateStore, RegistryRecord};

impl Registry for DynamoStateStore {
    async fn lock_owner(&self, tenant: &str) -> Result<Option<String>, AwsCallError> {
        DynamoStateStore::lock_owner(self, tenant).await
    }

    async fn is_registered(&self, tenant: &str) -> Result<bool, AwsCallError> {
        Ok(self.registry(tenant).await?.is_some())
    }

    async fn claimed_tenants(&self) -> Result<Vec<String>, AwsCallError> {
        DynamoStateStore::claimed_tenants(self).await
    }

    async fn update_registry(
        &self,
        tenant: &str,
        record: &RegistryRecord,
    ) -> Result<(), AwsCallError> {
        DynamoStateStore::update_registry(self, tenant, record).await
    }

    async fn unregister(&self, tenant: &str, execution: &str) -> Result<bool, AwsCallError> {
        DynamoStateStore::unregister(self, tenant, execution).await
    }

    async fn forget_tenant(&self, tenant: &str) -> Result<(), AwsCallError> {
        DynamoStateStore::forget_tenant(self, tenant).await
    }
}
