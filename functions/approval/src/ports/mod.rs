//! What the gate talks to, all in the orchestrator's account, one service per
//! file: the approvals table ([`Votes`]), the approvers' topic ([`Mailer`]),
//! the links' HMAC key ([`LinkKey`]) and the waiting run ([`TaskCallback`]).

mod link_key;
mod mailer;
mod task_callback;
mod votes;

#[cfg(test)]
pub mod fake;

use aws_config::SdkConfig;
use stepdeploy_shared::approvals;

pub use link_key::{KeyError, LinkKey, SecretsLinkKey, SigningKey};
pub use mailer::{Mailer, SnsMailer};
pub use stepdeploy_shared::approvals::ApprovalRequest;
pub use task_callback::{sha256_hex, SfnTaskCallback, TaskCallback};
pub use votes::{DynamoVotes, VoteOutcome, Votes};

/// The variable naming this function's Function URL, the links' base.
pub const LINKS_URL_VAR: &str = "STEPDEPLOY_APPROVAL_URL";

/// Settings from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Approvals table (`STEPDEPLOY_APPROVALS_TABLE`).
    pub table: String,
    /// HMAC key secret (`STEPDEPLOY_HMAC_SECRET_ID`).
    pub hmac_secret: String,
    /// Approvals topic (`STEPDEPLOY_APPROVAL_TOPIC_ARN`).
    pub topic_arn: String,
    /// Base URL of this function's Function URL ([`LINKS_URL_VAR`]). Only
    /// the gate side (`ApprovalFunction`) has it: the links side serves the
    /// URL and never builds links, so a missing one is an error only when
    /// links are made.
    pub url: Option<String>,
}

impl Settings {
    /// Reads the environment; the table and secret default to the local
    /// stack's names, the URL has no default.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let or = |name: &str, default: &str| var(name).unwrap_or_else(|| default.to_string());
        Self {
            table: or(approvals::TABLE_VAR, approvals::DEFAULT_TABLE),
            hmac_secret: or("STEPDEPLOY_HMAC_SECRET_ID", "stepdeploy/approval-hmac-key"),
            topic_arn: or("STEPDEPLOY_APPROVAL_TOPIC_ARN", ""),
            url: var(LINKS_URL_VAR),
        }
    }
}

/// The gate's ports; each step takes only the ones it uses.
pub struct Ports<V, M, K, T> {
    /// The approvals table.
    pub votes: V,
    /// The approvers' topic.
    pub mailer: M,
    /// The links' signing key.
    pub keys: K,
    /// The run waiting at the gate.
    pub runs: T,
}

/// The ports on AWS.
pub type AwsPorts = Ports<DynamoVotes, SnsMailer, SecretsLinkKey, SfnTaskCallback>;

impl AwsPorts {
    /// Clients built once per cold start, on the orchestrator's credentials.
    pub fn new(config: &SdkConfig, settings: &Settings) -> Self {
        Self {
            votes: DynamoVotes::new(config, &settings.table),
            mailer: SnsMailer::new(config, &settings.topic_arn),
            keys: SecretsLinkKey::new(config, &settings.hmac_secret),
            runs: SfnTaskCallback::new(config),
        }
    }
}
