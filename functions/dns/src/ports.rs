//! What dns needs in the environment's account: Route53, reduced to the
//! tenant's alias record, and the run's ledger; with the Route53 adapter
//! and how both are built for an environment.

use aws_config::SdkConfig;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecordSet, RrType,
};
use std::future::Future;
use stepdeploy_shared::aws::AwsConnector;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::state::DynamoStateStore;

/// Route53, reduced to the alias record.
pub trait Records: Send + Sync {
    /// The alias target (DNS name) of the A record `name` in `zone`, if it exists.
    fn alias_of(
        &self,
        zone: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsCallError>> + Send;
    /// UPSERTs the alias.
    fn upsert_alias(
        &self,
        zone: &str,
        name: &str,
        target: &str,
        target_zone: &str,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// dns's ports in one environment.
#[derive(Clone)]
pub struct EnvPorts<R, S> {
    /// The hosted zone's records.
    pub records: R,
    /// The state table (ledger).
    pub state: S,
}

/// The AWS ports, built once per environment per cold start.
pub fn connector(base: SdkConfig) -> AwsConnector<EnvPorts<Route53, DynamoStateStore>> {
    AwsConnector::with_env(base, "stepdeploy-dns", |config, env| EnvPorts {
        records: Route53(aws_sdk_route53::Client::new(config)),
        state: DynamoStateStore::new(
            aws_sdk_dynamodb::Client::new(config),
            env.state_table.clone(),
        ),
    })
}

/// Route53 adapter.
#[derive(Clone)]
pub struct Route53(pub aws_sdk_route53::Client);

/// Route53 names are absolute: `name.`.
fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

impl Records for Route53 {
    async fn alias_of(&self, zone: &str, name: &str) -> Result<Option<String>, AwsCallError> {
        let out = self
            .0
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .start_record_name(fqdn(name))
            .start_record_type(RrType::A)
            .max_items(1)
            .send()
            .await
            .map_err(|e| AwsCallError::new("route53:ListResourceRecordSets", e))?;
        Ok(out
            .resource_record_sets()
            .iter()
            .find(|r| r.name().eq_ignore_ascii_case(&fqdn(name)) && r.r#type() == &RrType::A)
            .map(|r| {
                r.alias_target()
                    .map(|a| a.dns_name().trim_end_matches('.').to_string())
                    .unwrap_or_default()
            }))
    }

    async fn upsert_alias(
        &self,
        zone: &str,
        name: &str,
        target: &str,
        target_zone: &str,
    ) -> Result<(), AwsCallError> {
        let op = "route53:ChangeResourceRecordSets";
        let build = |e: aws_sdk_route53::error::BuildError| AwsCallError::other(op, e);
        let record = ResourceRecordSet::builder()
            .name(fqdn(name))
            .r#type(RrType::A)
            .alias_target(
                AliasTarget::builder()
                    .dns_name(fqdn(target))
                    .hosted_zone_id(target_zone)
                    .evaluate_target_health(false)
                    .build()
                    .map_err(build)?,
            )
            .build()
            .map_err(build)?;
        let change = Change::builder()
            .action(ChangeAction::Upsert)
            .resource_record_set(record)
            .build()
            .map_err(build)?;
        self.0
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(
                ChangeBatch::builder()
                    .comment("stepdeploy")
                    .changes(change)
                    .build()
                    .map_err(build)?,
            )
            .send()
            .await
            .map_err(|e| AwsCallError::new(op, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsOutput;
    use aws_smithy_mocks::{mock, mock_client};

    #[tokio::test]
    async fn alias_is_read_from_the_record_set_listing() {
        let listing = mock!(aws_sdk_route53::Client::list_resource_record_sets).then_output(|| {
            let alias = AliasTarget::builder()
                .dns_name("d1.cloudfront.net.")
                .hosted_zone_id("Z2FDTNDATAQYW2")
                .evaluate_target_health(false)
                .build()
                .expect("alias");
            let record = ResourceRecordSet::builder()
                .name("goldencrust.wpsit.kimmyai.io.")
                .r#type(RrType::A)
                .alias_target(alias)
                .build()
                .expect("record");
            ListResourceRecordSetsOutput::builder()
                .resource_record_sets(record)
                .is_truncated(false)
                .max_items(1)
                .build()
                .expect("output")
        });
        let r53 = Route53(mock_client!(aws_sdk_route53, [&listing]));
        assert_eq!(
            r53.alias_of("Z1", "goldencrust.wpsit.kimmyai.io")
                .await
                .expect("answered"),
            Some("d1.cloudfront.net".into())
        );
    }
}
