//! Writes Mozilla's root certificates (`webpki-root-certs`) as one PEM bundle
//! into `OUT_DIR`, the form the AWS SDK's trust store takes (`src/tls.rs`).
//! Encoding them at start-up instead was a third of a function's cold-start
//! instructions (`bench/README.md`, cold start).

use base64::Engine;
use std::{env, fs, path::PathBuf};

fn main() {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut pem = String::with_capacity(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() * 2200);
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        pem.push_str(&engine.encode(cert.as_ref()));
        pem.push_str("\n-----END CERTIFICATE-----\n");
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("roots.pem");
    fs::write(&out, pem).expect("OUT_DIR is writable");
    println!("cargo:rerun-if-changed=build.rs");
}
