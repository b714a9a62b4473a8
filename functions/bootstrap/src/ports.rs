//! What bootstrap needs from an environment's account, as small traits, and
//! their AWS SDK adapters. The handler only sees the traits, bundled per
//! environment in [`EnvPorts`] and handed over by a
//! `stepdeploy_shared::aws::Connect`.

use aws_config::SdkConfig;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};
use std::future::Future;
use stepdeploy_shared::aws::s3_client;
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::EnvironmentConfig;
pub use stepdeploy_shared::listener::{ElbRules, ListenerRule, ListenerRules};
use stepdeploy_shared::state::DynamoStateStore;

/// Makes sure the environment's config bucket exists with safe settings.
pub trait ConfigBucket: Send + Sync {
    /// Creates `bucket` in `region` if missing and converges its settings; `true` if created now.
    fn ensure_bucket(
        &self,
        bucket: &str,
        region: &str,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
    /// Makes S3 expire the database dumps (`_backups/`) after `days`,
    /// keeping the bucket's other lifecycle rules; writes only on a change.
    fn ensure_backup_retention(
        &self,
        bucket: &str,
        days: u32,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// The lifecycle rule that expires the database dumps.
pub const BACKUP_RULE_ID: &str = "stepdeploy-database-backups";

/// The ports for one environment.
#[derive(Clone)]
pub struct EnvPorts<S, L, B> {
    /// Locks, priority claims, the registry and the ledger.
    pub state: S,
    /// The environment's listener, for the priorities in use.
    pub rules: L,
    /// The environment's config bucket (notify writes the tenant documents there).
    pub bucket: B,
}

/// S3 adapter.
#[derive(Clone)]
pub struct S3Bucket(pub aws_sdk_s3::Client);

impl ConfigBucket for S3Bucket {
    async fn ensure_backup_retention(&self, bucket: &str, days: u32) -> Result<(), AwsCallError> {
        use aws_sdk_s3::types::{
            BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
            LifecycleRuleFilter, NoncurrentVersionExpiration,
        };
        let rules = match self
            .0
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(out) => out.rules.unwrap_or_default(),
            // S3 answers NoSuchLifecycleConfiguration (not modeled) when unset.
            Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => Vec::new(),
            Err(e) => return Err(AwsCallError::new("s3:GetBucketLifecycleConfiguration", e)),
        };
        let days = i32::try_from(days).unwrap_or(i32::MAX);
        let ours = LifecycleRule::builder()
            .id(BACKUP_RULE_ID)
            .status(ExpirationStatus::Enabled)
            .filter(
                LifecycleRuleFilter::builder()
                    .prefix(stepdeploy_shared::config::BACKUP_PREFIX)
                    .build(),
            )
            .expiration(LifecycleExpiration::builder().days(days).build())
            // The bucket is versioned: the expired dump's version goes a day later.
            .noncurrent_version_expiration(
                NoncurrentVersionExpiration::builder()
                    .noncurrent_days(1)
                    .build(),
            )
            .build()
            .map_err(|e| AwsCallError::other("s3:PutBucketLifecycleConfiguration (build)", e))?;
        let current = rules.iter().find(|r| r.id() == Some(BACKUP_RULE_ID));
        let same = current.is_some_and(|r| {
            r.status() == &ExpirationStatus::Enabled
                && r.expiration().and_then(|e| e.days()) == Some(days)
        });
        if same {
            return Ok(());
        }
        let mut keep: Vec<LifecycleRule> = rules
            .into_iter()
            .filter(|r| r.id() != Some(BACKUP_RULE_ID))
            .collect();
        keep.push(ours);
        self.0
            .put_bucket_lifecycle_configuration()
            .bucket(bucket)
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .set_rules(Some(keep))
                    .build()
                    .map_err(|e| {
                        AwsCallError::other("s3:PutBucketLifecycleConfiguration (build)", e)
                    })?,
            )
            .send()
            .await
            .map_err(|e| AwsCallError::new("s3:PutBucketLifecycleConfiguration", e))?;
        Ok(())
    }

    async fn ensure_bucket(&self, bucket: &str, region: &str) -> Result<bool, AwsCallError> {
        let exists = match self.0.head_bucket().bucket(bucket).send().await {
            Ok(_) => true,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => false,
            Err(e) => return Err(AwsCallError::new("s3:HeadBucket", e)),
        };
        let mut created = false;
        if !exists {
            let mut create = self.0.create_bucket().bucket(bucket);
            if region != "us-east-1" {
                create = create.create_bucket_configuration(
                    CreateBucketConfiguration::builder()
                        .location_constraint(BucketLocationConstraint::from(region))
                        .build(),
                );
            }
            match create.send().await {
                Ok(_) => created = true,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_bucket_already_owned_by_you()) => {}
                Err(e) => return Err(AwsCallError::new("s3:CreateBucket", e)),
            }
        }
        // Converge settings: read first, write only what differs, so a re-run makes no changes.
        let versioning = self
            .0
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| AwsCallError::new("s3:GetBucketVersioning", e))?;
        if versioning.status() != Some(&BucketVersioningStatus::Enabled) {
            self.0
                .put_bucket_versioning()
                .bucket(bucket)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| AwsCallError::new("s3:PutBucketVersioning", e))?;
        }
        let encrypted = match self.0.get_bucket_encryption().bucket(bucket).send().await {
            Ok(out) => out
                .server_side_encryption_configuration()
                .is_some_and(|c| !c.rules().is_empty()),
            // S3 answers ServerSideEncryptionConfigurationNotFoundError (not modeled) when unset.
            Err(e) if e.code() == Some("ServerSideEncryptionConfigurationNotFoundError") => false,
            Err(e) => return Err(AwsCallError::new("s3:GetBucketEncryption", e)),
        };
        if !encrypted {
            let rule = ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(
                    ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(ServerSideEncryption::Aes256)
                        .build()
                        .map_err(|e| AwsCallError::other("s3:PutBucketEncryption (build)", e))?,
                )
                .build();
            self.0
                .put_bucket_encryption()
                .bucket(bucket)
                .server_side_encryption_configuration(
                    ServerSideEncryptionConfiguration::builder()
                        .rules(rule)
                        .build()
                        .map_err(|e| AwsCallError::other("s3:PutBucketEncryption (build)", e))?,
                )
                .send()
                .await
                .map_err(|e| AwsCallError::new("s3:PutBucketEncryption", e))?;
        }
        let blocked = match self.0.get_public_access_block().bucket(bucket).send().await {
            Ok(out) => out.public_access_block_configuration().is_some_and(|c| {
                c.block_public_acls() == Some(true)
                    && c.ignore_public_acls() == Some(true)
                    && c.block_public_policy() == Some(true)
                    && c.restrict_public_buckets() == Some(true)
            }),
            Err(e) if e.code() == Some("NoSuchPublicAccessBlockConfiguration") => false,
            Err(e) => return Err(AwsCallError::new("s3:GetPublicAccessBlock", e)),
        };
        if !blocked {
            self.0
                .put_public_access_block()
                .bucket(bucket)
                .public_access_block_configuration(
                    PublicAccessBlockConfiguration::builder()
                        .block_public_acls(true)
                        .ignore_public_acls(true)
                        .block_public_policy(true)
                        .restrict_public_buckets(true)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| AwsCallError::new("s3:PutPublicAccessBlock", e))?;
        }
        Ok(created)
    }
}

/// The AWS ports for one environment, from its assumed-role config (for
/// `AwsConnector::with_env`: the state table is the environment's).
pub fn aws_ports(
    config: &SdkConfig,
    env: &EnvironmentConfig,
) -> EnvPorts<DynamoStateStore, ElbRules, S3Bucket> {
    EnvPorts {
        state: DynamoStateStore::new(
            aws_sdk_dynamodb::Client::new(config),
            env.state_table.clone(),
        ),
        rules: ElbRules(aws_sdk_elasticloadbalancingv2::Client::new(config)),
        bucket: S3Bucket(s3_client(config)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::create_bucket::CreateBucketOutput;
    use aws_sdk_s3::operation::get_bucket_encryption::GetBucketEncryptionOutput;
    use aws_sdk_s3::operation::get_bucket_versioning::GetBucketVersioningOutput;
    use aws_sdk_s3::operation::get_public_access_block::GetPublicAccessBlockOutput;
    use aws_sdk_s3::operation::head_bucket::{HeadBucketError, HeadBucketOutput};
    use aws_sdk_s3::operation::put_bucket_encryption::PutBucketEncryptionOutput;
    use aws_sdk_s3::operation::put_bucket_versioning::PutBucketVersioningOutput;
    use aws_sdk_s3::operation::put_public_access_block::PutPublicAccessBlockOutput;
    use aws_sdk_s3::types::error::NotFound;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    #[tokio::test]
    async fn missing_bucket_is_created_with_safe_settings() {
        let head = mock!(aws_sdk_s3::Client::head_bucket)
            .then_error(|| HeadBucketError::NotFound(NotFound::builder().build()));
        let create = mock!(aws_sdk_s3::Client::create_bucket)
            .match_requests(|r| {
                r.bucket() == Some("cfg")
                    && r.create_bucket_configuration()
                        .and_then(|c| c.location_constraint())
                        .map(|c| c.as_str())
                        == Some("eu-west-1")
            })
            .then_output(|| CreateBucketOutput::builder().build());
        let get_versioning = mock!(aws_sdk_s3::Client::get_bucket_versioning)
            .then_output(|| GetBucketVersioningOutput::builder().build());
        let put_versioning = mock!(aws_sdk_s3::Client::put_bucket_versioning)
            .match_requests(|r| {
                r.versioning_configuration().and_then(|v| v.status())
                    == Some(&BucketVersioningStatus::Enabled)
            })
            .then_output(|| PutBucketVersioningOutput::builder().build());
        let get_encryption = mock!(aws_sdk_s3::Client::get_bucket_encryption).then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(404).expect("status"),
                aws_smithy_types::body::SdkBody::from("<Error><Code>ServerSideEncryptionConfigurationNotFoundError</Code><Message>none</Message></Error>"),
            )
        });
        let put_encryption = mock!(aws_sdk_s3::Client::put_bucket_encryption)
            .then_output(|| PutBucketEncryptionOutput::builder().build());
        let get_block = mock!(aws_sdk_s3::Client::get_public_access_block).then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(404).expect("status"),
                aws_smithy_types::body::SdkBody::from("<Error><Code>NoSuchPublicAccessBlockConfiguration</Code><Message>none</Message></Error>"),
            )
        });
        let put_block = mock!(aws_sdk_s3::Client::put_public_access_block)
            .match_requests(|r| {
                r.public_access_block_configuration().is_some_and(|c| {
                    c.block_public_acls() == Some(true) && c.restrict_public_buckets() == Some(true)
                })
            })
            .then_output(|| PutPublicAccessBlockOutput::builder().build());
        let rules = [
            &head,
            &create,
            &get_versioning,
            &put_versioning,
            &get_encryption,
            &put_encryption,
            &get_block,
            &put_block,
        ];
        let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, rules);
        assert!(S3Bucket(client)
            .ensure_bucket("cfg", "eu-west-1")
            .await
            .expect("created"));
        for rule in rules {
            assert_eq!(rule.num_calls(), 1);
        }
    }

    #[tokio::test]
    async fn converged_bucket_gets_no_writes() {
        let head = mock!(aws_sdk_s3::Client::head_bucket)
            .then_output(|| HeadBucketOutput::builder().build());
        let get_versioning = mock!(aws_sdk_s3::Client::get_bucket_versioning).then_output(|| {
            GetBucketVersioningOutput::builder()
                .status(BucketVersioningStatus::Enabled)
                .build()
        });
        let get_encryption = mock!(aws_sdk_s3::Client::get_bucket_encryption).then_output(|| {
            let rule = ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(
                    ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(ServerSideEncryption::Aes256)
                        .build()
                        .expect("sse"),
                )
                .build();
            GetBucketEncryptionOutput::builder()
                .server_side_encryption_configuration(
                    ServerSideEncryptionConfiguration::builder()
                        .rules(rule)
                        .build()
                        .expect("config"),
                )
                .build()
        });
        let get_block = mock!(aws_sdk_s3::Client::get_public_access_block).then_output(|| {
            GetPublicAccessBlockOutput::builder()
                .public_access_block_configuration(
                    PublicAccessBlockConfiguration::builder()
                        .block_public_acls(true)
                        .ignore_public_acls(true)
                        .block_public_policy(true)
                        .restrict_public_buckets(true)
                        .build(),
                )
                .build()
        });
        // Only reads are mocked: any write would fail the call.
        let client = mock_client!(
            aws_sdk_s3,
            RuleMode::MatchAny,
            [&head, &get_versioning, &get_encryption, &get_block]
        );
        assert!(!S3Bucket(client)
            .ensure_bucket("cfg", "eu-west-1")
            .await
            .expect("converged"));
    }
}
