//! AWS SDK configuration shared by every function and the CLI.
//!
//! One [`sdk_config`] loads the standard chain (env, profile, IMDS/ECS) and
//! honours `AWS_ENDPOINT_URL`, so the same binary talks to AWS or to the local
//! stack; in Lambda it takes the region and the role's credentials straight
//! from the variables Lambda sets (the chain would find them there too).
//! [`assume_environment_role`] turns it into a config for an environment's
//! account, through its deploy role and ExternalId.

use crate::config::EnvironmentConfig;
use aws_config::{sts::AssumeRoleProvider, BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

/// Loads the orchestrator's own AWS configuration once per cold start.
///
/// `AWS_ENDPOINT_URL` (and the per-service `AWS_ENDPOINT_URL_<SERVICE>`) are
/// read by the standard loader; see [`s3_client`] for the one service that
/// also needs path-style addressing when an endpoint is set.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_with(&SdkOverrides::default()).await
}

/// What an operator may set on the command line over the standard chain.
#[derive(Debug, Clone, Default)]
pub struct SdkOverrides {
    /// Endpoint for every service (the local stack); `AWS_ENDPOINT_URL` when absent.
    pub endpoint_url: Option<String>,
    /// Named profile; `AWS_PROFILE` when absent.
    pub profile: Option<String>,
    /// Region; the chain's (`AWS_REGION`, profile) when absent.
    pub region: Option<String>,
}

/// [`sdk_config`] with the operator's overrides applied (the CLI's `--endpoint-url`, `--profile`, `--region`).
///
/// Every call goes through [`crate::timing::TimedHttpClient`] over
/// [`crate::tls::sdk_http_client`] (compiled-in root certificates).
pub async fn sdk_config_with(overrides: &SdkOverrides) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(
        crate::timing::TimedHttpClient::new(crate::tls::sdk_http_client()),
    );
    if let Some(url) = &overrides.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(profile) = &overrides.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &overrides.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(lambda) = LambdaEnvironment::from_env() {
        // Lambda always sets both; naming them spares every cold start the
        // construction of the region and credential chains (profile, SSO,
        // web identity, ECS, IMDS providers), which would find them there.
        if overrides.region.is_none() {
            loader = loader.region(Region::new(lambda.region));
        }
        if overrides.profile.is_none() {
            loader = loader.credentials_provider(
                aws_config::environment::credentials::EnvironmentVariableCredentialsProvider::new(),
            );
        }
    }
    loader.load().await
}

/// What the Lambda runtime puts in a function's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LambdaEnvironment {
    region: String,
}

impl LambdaEnvironment {
    /// Set when running as a Lambda function whose credentials and region
    /// are environment variables (always, in Lambda; also `cargo lambda`).
    fn from_env() -> Option<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let set = |name: &str| var(name).filter(|v| !v.is_empty());
        set("AWS_LAMBDA_FUNCTION_NAME")?;
        set("AWS_ACCESS_KEY_ID")?;
        set("AWS_SECRET_ACCESS_KEY")?;
        Some(Self {
            region: set("AWS_REGION")?,
        })
    }
}

/// A config that acts in `env`'s account and region through its deploy role.
///
/// Credentials are fetched lazily and refreshed by the SDK; the session name
/// says which run assumed the role, so CloudTrail in the target account shows it.
pub async fn assume_environment_role(
    base: &SdkConfig,
    env: &EnvironmentConfig,
    session_name: &str,
) -> SdkConfig {
    assume_role_in(base, env, &env.deploy_role_arn, session_name).await
}

/// `base` acting in `env`'s account through its read-only role
/// ([`EnvironmentConfig::read_role_arn`]): what operators' tools (`stepdeploy
/// status`) use, since the deploy role trusts only the phase functions.
pub async fn assume_environment_read_role(
    base: &SdkConfig,
    env: &EnvironmentConfig,
    session_name: &str,
) -> SdkConfig {
    assume_role_in(base, env, &env.read_role_arn(), session_name).await
}

async fn assume_role_in(
    base: &SdkConfig,
    env: &EnvironmentConfig,
    role_arn: &str,
    session_name: &str,
) -> SdkConfig {
    let provider = AssumeRoleProvider::builder(role_arn.to_string())
        .external_id(env.external_id.clone())
        .session_name(session_name_for(session_name))
        .configure(base)
        .build()
        .await;
    base.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .region(Region::new(env.region.clone()))
        .build()
}

/// Per-environment values (clients, ports) built once per cold start from
/// the environment's assumed-role config and then reused: the credentials
/// provider inside refreshes itself, so a warm Lambda never assumes again.
pub struct EnvCache<T> {
    base: SdkConfig,
    session: &'static str,
    cache: tokio::sync::Mutex<std::collections::HashMap<String, T>>,
}

impl<T: Clone> EnvCache<T> {
    /// A cache on top of the orchestrator's own config; `session` names the caller in CloudTrail.
    pub fn new(base: SdkConfig, session: &'static str) -> Self {
        Self {
            base,
            session,
            cache: tokio::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The orchestrator's own config.
    pub fn base(&self) -> &SdkConfig {
        &self.base
    }

    /// The value for `env`, built with `build` from its assumed-role config on first use.
    pub async fn get(&self, env: &EnvironmentConfig, build: impl FnOnce(&SdkConfig) -> T) -> T {
        let key = format!(
            "{}|{}|{}|{}",
            env.name, env.deploy_role_arn, env.external_id, env.state_table
        );
        let mut cache = self.cache.lock().await;
        if let Some(value) = cache.get(&key) {
            return value.clone();
        }
        let config = assume_environment_role(&self.base, env, self.session).await;
        let value = build(&config);
        cache.insert(key, value.clone());
        value
    }
}

/// Hands a phase its ports for one environment: the one seam between a
/// handler and the accounts it acts in. Handlers take `&impl Connect<P>`;
/// the AWS side is [`AwsConnector`], tests use [`Same`].
pub trait Connect<P>: Send + Sync {
    /// The ports acting in `env`'s account.
    fn connect(&self, env: &EnvironmentConfig) -> impl std::future::Future<Output = P> + Send;
}

/// Ports built from an environment's assumed-role config, once per
/// environment per cold start (see [`EnvCache`]).
pub struct AwsConnector<P> {
    cache: EnvCache<P>,
    build: Build<P>,
}

/// How an [`AwsConnector`] makes the ports: from the assumed-role config
/// alone, or also from the environment's own settings (its state table, its
/// MySQL agent).
enum Build<P> {
    Config(fn(&SdkConfig) -> P),
    ConfigAndEnv(fn(&SdkConfig, &EnvironmentConfig) -> P),
}

impl<P: Clone> AwsConnector<P> {
    /// A connector on top of the orchestrator's own config; `session` names
    /// the caller in CloudTrail, `build` makes the ports from a config.
    pub fn new(base: SdkConfig, session: &'static str, build: fn(&SdkConfig) -> P) -> Self {
        Self {
            cache: EnvCache::new(base, session),
            build: Build::Config(build),
        }
    }

    /// [`AwsConnector::new`] for ports that also need the environment's
    /// settings (the ledger's `state_table`, the MySQL agent's ARN).
    pub fn with_env(
        base: SdkConfig,
        session: &'static str,
        build: fn(&SdkConfig, &EnvironmentConfig) -> P,
    ) -> Self {
        Self {
            cache: EnvCache::new(base, session),
            build: Build::ConfigAndEnv(build),
        }
    }

    /// The orchestrator's own config.
    pub fn base(&self) -> &SdkConfig {
        self.cache.base()
    }
}

impl<P: Clone + Send + Sync> Connect<P> for AwsConnector<P> {
    async fn connect(&self, env: &EnvironmentConfig) -> P {
        match &self.build {
            Build::Config(build) => self.cache.get(env, *build).await,
            Build::ConfigAndEnv(build) => self.cache.get(env, |config| build(config, env)).await,
        }
    }
}

/// The same ports for every environment (tests, fakes).
#[derive(Debug, Clone, Default)]
pub struct Same<P>(pub P);

impl<P: Clone + Send + Sync> Connect<P> for Same<P> {
    async fn connect(&self, _env: &EnvironmentConfig) -> P {
        self.0.clone()
    }
}

/// STS session names allow `[\w+=,.@-]{2,64}`; anything else becomes `-`.
pub fn session_name_for(raw: &str) -> String {
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    while name.len() < 2 {
        name.push('-');
    }
    name
}

/// Whether an endpoint override (local stack) is in use.
pub fn uses_custom_endpoint(config: &SdkConfig) -> bool {
    config.endpoint_url().is_some()
}

/// An S3 client; path-style addressing when an endpoint override is set,
/// because local emulators do not serve virtual-hosted bucket names.
pub fn s3_config(config: &SdkConfig) -> aws_sdk_s3::config::Config {
    aws_sdk_s3::config::Builder::from(config)
        .force_path_style(uses_custom_endpoint(config))
        .build()
}

/// An S3 client built with [`s3_config`].
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(s3_config(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_environment_needs_function_name_credentials_and_region() {
        let lambda = [
            ("AWS_LAMBDA_FUNCTION_NAME", "stepdeploy-ecs"),
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_REGION", "af-south-1"),
        ];
        let from = |vars: &[(&str, &str)]| {
            LambdaEnvironment::from_vars(|name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            })
        };
        assert_eq!(
            from(&lambda),
            Some(LambdaEnvironment {
                region: "af-south-1".into()
            })
        );
        // Outside Lambda (the CLI), or without credentials in the environment: the standard chains.
        for missing in 0..lambda.len() {
            let vars: Vec<_> = lambda
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != missing)
                .map(|(_, kv)| *kv)
                .collect();
            assert_eq!(from(&vars), None, "without {}", lambda[missing].0);
        }
    }

    #[test]
    fn session_names_are_sanitised() {
        assert_eq!(
            session_name_for("stepdeploy-goldencrust-sit"),
            "stepdeploy-goldencrust-sit"
        );
        assert_eq!(session_name_for("a b/c"), "a-b-c");
        assert_eq!(session_name_for("x"), "x-");
        assert_eq!(session_name_for(&"y".repeat(100)).len(), 64);
    }

    async fn uri_of_head_bucket(endpoint: Option<&str>) -> String {
        let (http, captured) = aws_smithy_http_client::test_util::capture_request(None);
        let mut builder = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(SharedCredentialsProvider::new(
                aws_credential_types::Credentials::for_tests(),
            ))
            .http_client(http);
        if let Some(endpoint) = endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        let _ = s3_client(&builder.build())
            .head_bucket()
            .bucket("stepdeploy-config")
            .send()
            .await;
        captured.expect_request().uri().to_string()
    }

    #[tokio::test]
    async fn path_style_only_with_endpoint() {
        assert_eq!(
            uri_of_head_bucket(None).await,
            "https://stepdeploy-config.s3.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            uri_of_head_bucket(Some("http://127.0.0.1:5000")).await,
            "http://127.0.0.1:5000/stepdeploy-config/"
        );
    }
}
