//! What bootstrap needs from an environment's account, as small traits, and
//! their AWS SDK adapters. The domain logic in `handler` only sees the traits.

use aws_config::SdkConfig;
use aws_sdk_elasticloadbalancingv2::types::Rule;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};
use std::collections::HashMap;
use std::future::Future;
use stepdeploy_shared::aws::{assume_environment_role, s3_client};
use stepdeploy_shared::aws_error::AwsCallError;
use stepdeploy_shared::config::EnvironmentConfig;
use stepdeploy_shared::state::{DynamoStateStore, StateStore};
use tokio::sync::Mutex;

/// One rule on the shared listener, reduced to what allocation needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerRule {
    /// Rule ARN.
    pub arn: String,
    /// Priority; `None` for the listener's default rule.
    pub priority: Option<u32>,
    /// Host names of its host-header condition.
    pub hosts: Vec<String>,
}

/// Reads the shared listener's rules.
pub trait ListenerRules: Send + Sync {
    /// Every rule on `listener_arn`, all pages.
    fn rules(
        &self,
        listener_arn: &str,
    ) -> impl Future<Output = Result<Vec<ListenerRule>, AwsCallError>> + Send;
}

/// Makes sure the environment's config bucket exists with safe settings.
pub trait ConfigBucket: Send + Sync {
    /// Creates `bucket` in `region` if missing and converges its settings; `true` if created now.
    fn ensure_bucket(
        &self,
        bucket: &str,
        region: &str,
    ) -> impl Future<Output = Result<bool, AwsCallError>> + Send;
}

/// The ports for one environment.
#[derive(Clone)]
pub struct EnvPorts<S, L, B> {
    /// The state table.
    pub state: S,
    /// The listener.
    pub rules: L,
    /// The config bucket.
    pub bucket: B,
}

/// Gives the ports for an environment (through its deploy role).
pub trait Connector: Send + Sync {
    /// State table port.
    type State: StateStore;
    /// Listener port.
    type Rules: ListenerRules;
    /// Bucket port.
    type Bucket: ConfigBucket;
    /// Ports acting in `env`'s account.
    fn connect(
        &self,
        env: &EnvironmentConfig,
    ) -> impl Future<Output = EnvPorts<Self::State, Self::Rules, Self::Bucket>> + Send;
}

/// ELBv2 adapter.
#[derive(Clone)]
pub struct ElbRules(pub aws_sdk_elasticloadbalancingv2::Client);

fn to_rule(rule: &Rule) -> ListenerRule {
    let hosts = rule
        .conditions()
        .iter()
        .filter(|c| c.field() == Some("host-header"))
        .flat_map(|c| {
            let configured = c
                .host_header_config()
                .map(|h| h.values().to_vec())
                .unwrap_or_default();
            // Older rules carry the hosts in `values` instead of `host_header_config`.
            configured.into_iter().chain(c.values().iter().cloned())
        })
        .collect();
    ListenerRule {
        arn: rule.rule_arn().unwrap_or_default().to_string(),
        priority: rule.priority().and_then(|p| p.parse().ok()),
        hosts,
    }
}

impl ListenerRules for ElbRules {
    async fn rules(&self, listener_arn: &str) -> Result<Vec<ListenerRule>, AwsCallError> {
        let mut rules = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .0
                .describe_rules()
                .listener_arn(listener_arn)
                .set_marker(marker)
                .page_size(400)
                .send()
                .await
                .map_err(|e| AwsCallError::new("elbv2:DescribeRules", e))?;
            rules.extend(page.rules().iter().map(to_rule));
            match page.next_marker() {
                Some(next) if !next.is_empty() => marker = Some(next.to_string()),
                _ => return Ok(rules),
            }
        }
    }
}

/// S3 adapter.
#[derive(Clone)]
pub struct S3Bucket(pub aws_sdk_s3::Client);

impl ConfigBucket for S3Bucket {
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

/// Real connector: assumes each environment's deploy role once per cold start
/// and keeps its SDK config (the credentials provider refreshes itself).
pub struct AwsConnector {
    base: SdkConfig,
    cache: Mutex<HashMap<String, EnvPorts<DynamoStateStore, ElbRules, S3Bucket>>>,
}

impl AwsConnector {
    /// A connector on top of the orchestrator's own config.
    pub fn new(base: SdkConfig) -> Self {
        Self {
            base,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl Connector for AwsConnector {
    type State = DynamoStateStore;
    type Rules = ElbRules;
    type Bucket = S3Bucket;

    async fn connect(
        &self,
        env: &EnvironmentConfig,
    ) -> EnvPorts<DynamoStateStore, ElbRules, S3Bucket> {
        let mut cache = self.cache.lock().await;
        let key = format!("{}|{}|{}", env.name, env.deploy_role_arn, env.state_table);
        if let Some(ports) = cache.get(&key) {
            return ports.clone();
        }
        let config = assume_environment_role(&self.base, env, "stepdeploy-bootstrap").await;
        let ports = EnvPorts {
            state: DynamoStateStore::new(
                aws_sdk_dynamodb::Client::new(&config),
                env.state_table.clone(),
            ),
            rules: ElbRules(aws_sdk_elasticloadbalancingv2::Client::new(&config)),
            bucket: S3Bucket(s3_client(&config)),
        };
        cache.insert(key, ports.clone());
        ports
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_sdk_dynamodb::types::AttributeValue;
    use aws_sdk_elasticloadbalancingv2::operation::describe_rules::DescribeRulesOutput;
    use aws_sdk_elasticloadbalancingv2::types::{HostHeaderConditionConfig, RuleCondition};
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
    use aws_smithy_types::retry::RetryConfig;
    use std::time::Duration;
    use stepdeploy_shared::state::{LockOutcome, StateStore};

    fn elb_rule(arn: &str, priority: &str, host: Option<&str>) -> Rule {
        let mut rule = Rule::builder().rule_arn(arn).priority(priority);
        if let Some(host) = host {
            rule = rule.conditions(
                RuleCondition::builder()
                    .field("host-header")
                    .host_header_config(HostHeaderConditionConfig::builder().values(host).build())
                    .build(),
            );
        }
        rule.build()
    }

    #[tokio::test]
    async fn listener_rules_reads_every_page() {
        let first = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_rules)
            .match_requests(|r| r.marker().is_none())
            .then_output(|| {
                DescribeRulesOutput::builder()
                    .rules(elb_rule("r-default", "default", None))
                    .rules(elb_rule("r-10", "10", Some("a.wpdev.kimmyai.io")))
                    .next_marker("page-2")
                    .build()
            });
        let second = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_rules)
            .match_requests(|r| r.marker() == Some("page-2"))
            .then_output(|| {
                DescribeRulesOutput::builder()
                    .rules(elb_rule("r-11", "11", Some("b.wpdev.kimmyai.io")))
                    .build()
            });
        let client = mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::MatchAny,
            [&first, &second]
        );
        let rules = ElbRules(client).rules("arn:listener").await.expect("rules");
        assert_eq!(first.num_calls() + second.num_calls(), 2);
        assert_eq!(
            rules
                .iter()
                .map(|r| (r.priority, r.hosts.clone()))
                .collect::<Vec<_>>(),
            vec![
                (None, vec![]),
                (Some(10), vec!["a.wpdev.kimmyai.io".to_string()]),
                (Some(11), vec!["b.wpdev.kimmyai.io".to_string()])
            ]
        );
    }

    #[tokio::test]
    async fn listener_rules_retries_throttling_then_succeeds() {
        let rule = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_rules)
            .sequence()
            .http_status(400, Some(r#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"#.into()))
            .times(2)
            .output(|| DescribeRulesOutput::builder().rules(elb_rule("r-12", "12", Some("c.wpdev.kimmyai.io"))).build())
            .build();
        let client = mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::Sequential,
            [&rule],
            |c| c.retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(1))
            )
        );
        let rules = ElbRules(client)
            .rules("arn:listener")
            .await
            .expect("third attempt succeeds");
        assert_eq!(rules.len(), 1);
        assert_eq!(rule.num_calls(), 3);
    }

    #[tokio::test]
    async fn listener_rules_throttled_past_retries_is_aws_throttled() {
        let rule = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_rules)
            .sequence()
            .http_status(400, Some(r#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"#.into()))
            .repeatedly()
            .build();
        let client = mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::Sequential,
            [&rule],
            |c| c.retry_config(
                RetryConfig::standard()
                    .with_max_attempts(2)
                    .with_initial_backoff(Duration::from_millis(1))
            )
        );
        let err = ElbRules(client)
            .rules("arn:listener")
            .await
            .expect_err("throttled");
        assert_eq!(err.error_name(), "AwsThrottled");
        assert!(
            err.to_string().starts_with("elbv2:DescribeRules failed"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn listener_rules_access_denied() {
        let rule = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_rules).then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(403).expect("status"),
                aws_smithy_types::body::SdkBody::from(r#"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized</Message></Error></ErrorResponse>"#),
            )
        });
        let client = mock_client!(aws_sdk_elasticloadbalancingv2, [&rule]);
        let err = ElbRules(client)
            .rules("arn:listener")
            .await
            .expect_err("denied");
        assert_eq!(err.error_name(), "AwsAccessDenied");
    }

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

    #[tokio::test]
    async fn lock_held_by_another_run_names_the_holder() {
        let put = mock!(aws_sdk_dynamodb::Client::put_item)
            .match_requests(|r| {
                r.condition_expression()
                    .is_some_and(|c| c.contains("attribute_not_exists(pk)"))
            })
            .then_error(|| {
                PutItemError::ConditionalCheckFailedException(
                    ConditionalCheckFailedException::builder()
                        .message("held")
                        .build(),
                )
            });
        let get = mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| {
            GetItemOutput::builder()
                .item("owner", AttributeValue::S("arn:exec:first".into()))
                .item("requested_by", AttributeValue::S("jane".into()))
                .item("expires_at", AttributeValue::N("5000".into()))
                .build()
        });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&put, &get]);
        let store = DynamoStateStore::new(client, "stepdeploy-state-dev");
        let outcome = store
            .acquire_lock("goldencrust", "arn:exec:second", "bob", 100, 200)
            .await
            .expect("answered");
        let LockOutcome::HeldBy(holder) = outcome else {
            panic!("expected HeldBy, got {outcome:?}")
        };
        assert_eq!(
            (
                holder.owner.as_str(),
                holder.requested_by.as_str(),
                holder.expires_at
            ),
            ("arn:exec:first", "jane", 5000)
        );
    }

    #[tokio::test]
    async fn free_lock_is_acquired() {
        let put = mock!(aws_sdk_dynamodb::Client::put_item)
            .match_requests(|r| {
                r.table_name() == Some("stepdeploy-state-dev")
                    && r.item()
                        .and_then(|i| i.get("pk"))
                        .and_then(|v| v.as_s().ok())
                        .map(String::as_str)
                        == Some("LOCK#goldencrust")
            })
            .then_output(|| PutItemOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, [&put]);
        let store = DynamoStateStore::new(client, "stepdeploy-state-dev");
        assert_eq!(
            store
                .acquire_lock("goldencrust", "arn:exec", "jane", 100, 200)
                .await
                .expect("ok"),
            LockOutcome::Acquired
        );
    }
}
