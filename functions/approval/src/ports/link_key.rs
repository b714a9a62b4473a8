//! The key approval links are signed with: the HMAC secret in Secrets
//! Manager, by version, so rotating it leaves pending links valid.

use aws_config::SdkConfig;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use stepdeploy_shared::aws_error::AwsCallError;

/// The shortest HMAC key accepted (bytes): shorter keys make links forgeable
/// by brute force, an empty one by anyone.
pub const MIN_KEY_BYTES: usize = 32;

/// A link-signing key and its id (the HMAC secret's version id).
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// Version id, carried by links as `k`.
    pub id: String,
    /// The key.
    pub bytes: Vec<u8>,
}

/// Why the gate cannot use its key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Secrets Manager failed.
    #[error(transparent)]
    Aws(#[from] AwsCallError),
    /// The key is too short to sign with.
    #[error("the approval links' HMAC key is {0} bytes; it must be at least 32 (set a long random secret)")]
    TooShort(usize),
}

/// The links' signing key.
pub trait LinkKey: Send + Sync {
    /// The key new links are signed with (the secret's current version).
    fn signing_key(&self) -> impl Future<Output = Result<SigningKey, KeyError>> + Send;
    /// The key with id `id` (a link's `k`), `None` if there is no such version.
    fn key(&self, id: &str) -> impl Future<Output = Result<Option<Vec<u8>>, KeyError>> + Send;
}

/// [`LinkKey`] on Secrets Manager.
pub struct SecretsLinkKey {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    /// Keys by version id: a version's value never changes.
    keys: Mutex<HashMap<String, Vec<u8>>>,
}

impl SecretsLinkKey {
    /// The key in secret `secret_id`.
    pub fn new(config: &SdkConfig, secret_id: &str) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(config),
            secret_id: secret_id.to_string(),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Reads a version of the key (the current one without `version`).
    async fn fetch_key(&self, version: Option<&str>) -> Result<Option<SigningKey>, KeyError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .set_version_id(version.map(str::to_string))
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e)
                if version.is_some()
                    && e.as_service_error().is_some_and(|e| {
                        e.is_resource_not_found_exception() || e.is_invalid_request_exception()
                    }) =>
            {
                return Ok(None)
            }
            Err(e) => {
                return Err(AwsCallError::new("secretsmanager:GetSecretValue (hmac key)", e).into())
            }
        };
        let bytes = out.secret_string().unwrap_or_default().as_bytes().to_vec();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort(bytes.len()));
        }
        let id = out.version_id().unwrap_or("current").to_string();
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(id.clone(), bytes.clone());
        }
        Ok(Some(SigningKey { id, bytes }))
    }
}

impl LinkKey for SecretsLinkKey {
    async fn signing_key(&self) -> Result<SigningKey, KeyError> {
        // Read each cold start (and so after a rotation): new links use the current version.
        self.fetch_key(None)
            .await?
            .ok_or_else(|| KeyError::TooShort(0))
    }

    async fn key(&self, id: &str) -> Result<Option<Vec<u8>>, KeyError> {
        if let Some(bytes) = self.keys.lock().ok().and_then(|k| k.get(id).cloned()) {
            return Ok(Some(bytes));
        }
        Ok(self.fetch_key(Some(id)).await?.map(|k| k.bytes))
    }
}
