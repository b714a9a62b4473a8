//! dns's logic: UPSERT the alias only when it differs (a re-run changes
//! nothing), recording it in the ledger first so rollback can remove or
//! restore it, then check the site answers over HTTPS.

use aws_config::SdkConfig;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecordSet, RrType,
};
use serde::Deserialize;
use std::future::Future;
use stepdeploy_shared::aws::EnvCache;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::EnvironmentConfig;
use stepdeploy_shared::contract::DnsOutput;
use stepdeploy_shared::error_names;
use stepdeploy_shared::errors::{diagnostic, ErrorName};
use stepdeploy_shared::http::Site;
use stepdeploy_shared::ledger::{LedgerEntry, LedgerKind};
use stepdeploy_shared::state::{DynamoStateStore, StateStore};
use stepdeploy_shared::DeploymentPlan;

/// What the state machine passes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsInput {
    /// bootstrap's plan.
    pub plan: DeploymentPlan,
}

/// Answers that mean the site is reachable (401: a site behind basic auth).
pub const GOOD_STATUS: [u16; 4] = [200, 301, 302, 401];

/// Why dns failed.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The payload is not a plan.
    #[error("invalid input: {0}")]
    Validation(String),
    /// The site did not answer as expected.
    #[error("GET {url} (Host: {host}): {what}")]
    Check {
        /// URL.
        url: String,
        /// Host header.
        host: String,
        /// What was seen.
        what: String,
    },
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
}

impl ErrorName for DnsError {
    fn error_name(&self) -> &'static str {
        match self {
            Self::Validation(_) => error_names::VALIDATION_FAILED,
            Self::Check { .. } => error_names::DNS_CHECK_FAILED,
            Self::Aws(e) => e.error_name(),
        }
    }
}

impl From<DnsError> for lambda_runtime::Diagnostic {
    fn from(err: DnsError) -> Self {
        diagnostic(&err)
    }
}

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

/// Route53 adapter.
#[derive(Clone)]
pub struct Route53(pub aws_sdk_route53::Client);

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

/// Gives the ports for an environment.
pub trait Connector: Send + Sync {
    /// Route53 port.
    type Records: Records;
    /// State port.
    type State: StateStore;
    /// Acting in `env`'s account.
    fn connect(
        &self,
        env: &EnvironmentConfig,
    ) -> impl Future<Output = (Self::Records, Self::State)> + Send;
}

/// Assumes each environment's deploy role once per cold start and keeps the clients.
pub struct AwsConnector(EnvCache<(Route53, DynamoStateStore)>);

impl AwsConnector {
    /// A connector on top of the orchestrator's own config.
    pub fn new(base: SdkConfig) -> Self {
        Self(EnvCache::new(base, "stepdeploy-dns"))
    }
}

impl Connector for AwsConnector {
    type Records = Route53;
    type State = DynamoStateStore;

    async fn connect(&self, env: &EnvironmentConfig) -> (Route53, DynamoStateStore) {
        self.0
            .get(env, |config| {
                (
                    Route53(aws_sdk_route53::Client::new(config)),
                    DynamoStateStore::new(
                        aws_sdk_dynamodb::Client::new(config),
                        env.state_table.clone(),
                    ),
                )
            })
            .await
    }
}

/// Runs the phase.
pub async fn handle(
    input: serde_json::Value,
    connector: &impl Connector,
    site: &impl Site,
) -> Result<DnsOutput, DnsError> {
    let DnsInput { plan } = serde_json::from_value(input)
        .map_err(|e| DnsError::Validation(format!("expected {{plan}}: {e}")))?;
    let env = &plan.env;
    let host = &plan.names.host;
    let target = env.cloudfront.domain_name.trim_end_matches('.').to_string();
    let (records, state) = connector.connect(env).await;

    let current = records.alias_of(&env.hosted_zone_id, host).await?;
    let changed = current.as_deref() != Some(target.as_str());
    if changed {
        // Written ahead: rollback deletes or restores the record whether or
        // not the UPSERT below went through.
        let entry = LedgerEntry {
            kind: LedgerKind::DnsRecord,
            id: format!("{}/{host}", env.hosted_zone_id),
            created: current.is_none(),
            phase: "dns".into(),
            previous: current.filter(|c| !c.is_empty()),
        };
        state.record(&plan.execution, &entry).await?;
        records
            .upsert_alias(
                &env.hosted_zone_id,
                host,
                &target,
                &env.cloudfront.hosted_zone_id,
            )
            .await?;
    }

    let url = match &env.dns.check_base_url {
        Some(base) => format!("{}/", base.trim_end_matches('/')),
        None => format!("https://{host}/"),
    };
    let status = site
        .status(&url, host)
        .await
        .map_err(|what| DnsError::Check {
            url: url.clone(),
            host: host.clone(),
            what,
        })?;
    if !GOOD_STATUS.contains(&status) {
        return Err(DnsError::Check {
            url,
            host: host.clone(),
            what: format!("answered {status}; expected 200, 301, 302 or 401"),
        });
    }
    Ok(DnsOutput {
        record: host.clone(),
        target,
        changed,
        url,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsOutput;
    use aws_smithy_mocks::{mock, mock_client};
    use stepdeploy_shared::errors::ErrorName;
    use stepdeploy_shared::state::memory::MemoryState;

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

    /// Records in memory; the check answers a fixed status.
    #[derive(Clone, Default)]
    struct Fake {
        alias: std::sync::Arc<std::sync::Mutex<Option<String>>>,
        upserts: std::sync::Arc<std::sync::Mutex<u32>>,
        state: MemoryState,
    }

    impl Records for Fake {
        async fn alias_of(&self, _zone: &str, _name: &str) -> Result<Option<String>, AwsCallError> {
            Ok(self.alias.lock().expect("lock").clone())
        }
        async fn upsert_alias(
            &self,
            _zone: &str,
            _name: &str,
            target: &str,
            _target_zone: &str,
        ) -> Result<(), AwsCallError> {
            *self.alias.lock().expect("lock") = Some(target.into());
            *self.upserts.lock().expect("lock") += 1;
            Ok(())
        }
    }

    impl Connector for Fake {
        type Records = Fake;
        type State = MemoryState;
        async fn connect(&self, _env: &EnvironmentConfig) -> (Fake, MemoryState) {
            (self.clone(), self.state.clone())
        }
    }

    struct Answers(u16);
    impl Site for Answers {
        async fn status_via(&self, _url: &str, _connect_to: &str) -> Result<u16, String> {
            unreachable!("dns checks the public name")
        }
        async fn status(&self, _url: &str, _host: &str) -> Result<u16, String> {
            Ok(self.0)
        }
    }

    #[tokio::test]
    async fn upserts_once_records_it_and_checks_the_site() {
        let fake = Fake::default();
        let input = serde_json::json!({ "plan": stepdeploy_shared::plan::sample("wordpress:6.4-apache", 140) });
        let first = handle(input.clone(), &fake, &Answers(302))
            .await
            .expect("ok");
        assert!(first.changed);
        assert_eq!(first.url, "https://goldencrust.wpsit.kimmyai.io/");
        let second = handle(input.clone(), &fake, &Answers(200))
            .await
            .expect("ok");
        assert!(!second.changed);
        assert_eq!(*fake.upserts.lock().expect("lock"), 1);
        let ledger = fake.state.entries();
        assert_eq!(
            (ledger.len(), ledger[0].kind.as_str(), ledger[0].created),
            (1, "dns_record", true)
        );
        let err = handle(input, &fake, &Answers(503))
            .await
            .expect_err("site down");
        assert_eq!(err.error_name(), "DnsCheckFailed");
    }
}
