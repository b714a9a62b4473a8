//! [`DnsResources`] on Route53.

use super::DnsResources;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecordSet, RrType,
};
use stepdeploy_shared::aws_error::AwsCallError;

/// Route53 adapter.
#[derive(Clone)]
pub struct Route53Adapter(pub aws_sdk_route53::Client);

const CHANGE: &str = "route53:ChangeResourceRecordSets (rollback)";

impl Route53Adapter {
    async fn change(
        &self,
        zone: &str,
        action: ChangeAction,
        record: ResourceRecordSet,
    ) -> Result<(), AwsCallError> {
        let change = Change::builder()
            .action(action)
            .resource_record_set(record)
            .build()
            .map_err(|e| AwsCallError::other(CHANGE, e))?;
        let batch = ChangeBatch::builder()
            .comment("stepdeploy rollback")
            .changes(change)
            .build()
            .map_err(|e| AwsCallError::other(CHANGE, e))?;
        self.0
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| AwsCallError::new(CHANGE, e))?;
        Ok(())
    }
}

impl DnsResources for Route53Adapter {
    type Record = ResourceRecordSet;

    async fn a_record(
        &self,
        zone: &str,
        fqdn: &str,
    ) -> Result<Option<ResourceRecordSet>, AwsCallError> {
        let out = self
            .0
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .start_record_name(fqdn)
            .start_record_type(RrType::A)
            .max_items(1)
            .send()
            .await
            .map_err(|e| AwsCallError::new("route53:ListResourceRecordSets", e))?;
        let host = fqdn.trim_end_matches('.');
        Ok(out
            .resource_record_sets()
            .iter()
            .find(|r| r.name().trim_end_matches('.').eq_ignore_ascii_case(host))
            .cloned())
    }

    async fn delete_record(
        &self,
        zone: &str,
        record: ResourceRecordSet,
    ) -> Result<(), AwsCallError> {
        self.change(zone, ChangeAction::Delete, record).await
    }

    async fn upsert_alias(
        &self,
        zone: &str,
        fqdn: &str,
        target: &str,
        target_zone: &str,
    ) -> Result<(), AwsCallError> {
        let alias = AliasTarget::builder()
            .dns_name(format!("{}.", target.trim_end_matches('.')))
            .hosted_zone_id(target_zone)
            .evaluate_target_health(false)
            .build()
            .map_err(|e| AwsCallError::other(CHANGE, e))?;
        let record = ResourceRecordSet::builder()
            .name(fqdn)
            .r#type(RrType::A)
            .alias_target(alias)
            .build()
            .map_err(|e| AwsCallError::other(CHANGE, e))?;
        self.change(zone, ChangeAction::Upsert, record).await
    }
}
