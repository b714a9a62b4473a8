//! The tenant-site stand-in (127.0.0.1:8088): what a tenant's URL answers,
//! and making it fail on purpose.

use std::process::Command;

/// HTTP status of `GET http://127.0.0.1:8088{path}` with `Host: {host}` (the tenant-site stand-in).
pub fn site_status(host: &str, path: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
            "-H",
            &format!("Host: {host}"),
            &format!("http://127.0.0.1:8088{path}"),
        ])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls the stand-in until `host` answers `expected` (it caches its view of the accounts for about a second).
pub fn wait_site_status(host: &str, path: &str, expected: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = site_status(host, path);
        if status == expected || std::time::Instant::now() > deadline {
            return status;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// Makes the stand-in answer 500 for `host` (`fail = true`) or serve it again.
pub fn standin_fail(host: &str, fail: bool) {
    let method = if fail { "POST" } else { "DELETE" };
    let status = Command::new("curl")
        .args([
            "-s",
            "-f",
            "-o",
            "/dev/null",
            "-X",
            method,
            &format!("http://127.0.0.1:8088/__standin__/fail?host={host}"),
        ])
        .status()
        .expect("curl");
    assert!(status.success(), "stand-in control call failed");
}
