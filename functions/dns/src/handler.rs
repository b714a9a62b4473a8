//! dns's logic: UPSERT the alias only when it differs (a re-run changes
//! nothing), recording it in the ledger first so rollback can remove or
//! restore it (see `stepdeploy_shared::ledger`), then check the site answers
//! over HTTPS.

use crate::error::DnsError;
use crate::ports::{EnvPorts, Records};
use serde::Deserialize;
use stepdeploy_shared::aws::Connect;
use stepdeploy_shared::contract::DnsOutput;
use stepdeploy_shared::http::Site;
use stepdeploy_shared::ledger::{LedgerEntry, LedgerKind};
use stepdeploy_shared::state::StateStore;
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

/// Runs the phase.
pub async fn handle<R: Records, S: StateStore>(
    DnsInput { plan }: DnsInput,
    connector: &impl Connect<EnvPorts<R, S>>,
    site: &impl Site,
) -> Result<DnsOutput, DnsError> {
    let target = plan
        .env
        .cloudfront
        .domain_name
        .trim_end_matches('.')
        .to_string();
    let ports = connector.connect(&plan.env).await;
    let changed = point_alias(&plan, &target, &ports).await?;
    let (url, status) = check_site(&plan, site).await?;
    Ok(DnsOutput {
        record: plan.names.host.clone(),
        target,
        changed,
        url,
        status,
    })
}

/// Points the tenant's name at `target` unless it already is; `true` if it changed.
async fn point_alias<R: Records, S: StateStore>(
    plan: &DeploymentPlan,
    target: &str,
    ports: &EnvPorts<R, S>,
) -> Result<bool, DnsError> {
    let env = &plan.env;
    let host = &plan.names.host;
    let current = ports.records.alias_of(&env.hosted_zone_id, host).await?;
    if current.as_deref() == Some(target) {
        return Ok(false);
    }
    // Written ahead: rollback deletes or restores the record whether or
    // not the UPSERT below went through.
    let entry = LedgerEntry {
        kind: LedgerKind::DnsRecord,
        id: format!("{}/{host}", env.hosted_zone_id),
        created: current.is_none(),
        phase: "dns".into(),
        previous: current.filter(|c| !c.is_empty()),
    };
    ports.state.record(&plan.execution, &entry).await?;
    ports
        .records
        .upsert_alias(
            &env.hosted_zone_id,
            host,
            target,
            &env.cloudfront.hosted_zone_id,
        )
        .await?;
    Ok(true)
}

/// `GET /` on the tenant's name (or on `dns.check_base_url`, the local
/// stand-in, with the name as Host): the URL and a status in
/// [`GOOD_STATUS`], else `DnsCheckFailed`.
async fn check_site(plan: &DeploymentPlan, site: &impl Site) -> Result<(String, u16), DnsError> {
    let host = &plan.names.host;
    let url = match &plan.env.dns.check_base_url {
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
    Ok((url, status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepdeploy_shared::aws::Same;
    use stepdeploy_shared::aws_error::AwsCallError;
    use stepdeploy_shared::errors::ErrorName;
    use stepdeploy_shared::state::memory::MemoryState;

    /// Records in memory; the check answers a fixed status.
    #[derive(Clone, Default)]
    struct Fake {
        alias: std::sync::Arc<std::sync::Mutex<Option<String>>>,
        upserts: std::sync::Arc<std::sync::Mutex<u32>>,
        state: MemoryState,
    }

    impl Fake {
        fn connector(&self) -> Same<EnvPorts<Fake, MemoryState>> {
            Same(EnvPorts {
                records: self.clone(),
                state: self.state.clone(),
            })
        }
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
        let connector = fake.connector();
        let input = DnsInput {
            plan: stepdeploy_shared::plan::sample("wordpress:6.4-apache", 140),
        };
        let first = handle(input.clone(), &connector, &Answers(302))
            .await
            .expect("ok");
        assert!(first.changed);
        assert_eq!(first.url, "https://goldencrust.wpsit.kimmyai.io/");
        let second = handle(input.clone(), &connector, &Answers(200))
            .await
            .expect("ok");
        assert!(!second.changed);
        assert_eq!(*fake.upserts.lock().expect("lock"), 1);
        let ledger = fake.state.entries();
        assert_eq!(
            (ledger.len(), ledger[0].kind.as_str(), ledger[0].created),
            (1, "dns_record", true)
        );
        let err = handle(input, &connector, &Answers(503))
            .await
            .expect_err("site down");
        assert_eq!(err.error_name(), "DnsCheckFailed");
    }
}
