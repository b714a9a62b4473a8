//! The local stack itself: where it answers, where the repository is, and
//! bringing it up once per test binary (`local/up` is idempotent).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// moto's endpoint.
pub const ENDPOINT: &str = "http://127.0.0.1:5000";
/// Orchestrator account (moto's default).
pub const ORCHESTRATOR_ACCOUNT: &str = "123456789012";
/// Orchestrator region.
pub const REGION: &str = "eu-west-1";

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn answers(url: &str) -> bool {
    Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "2", url])
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes sure the local stack is running and seeded (runs `local/up` at most once per test binary).
pub fn ensure_stack() {
    static UP: OnceLock<()> = OnceLock::new();
    UP.get_or_init(|| {
        let seeded = repo().join("local/.state/stack.json").exists();
        if seeded
            && answers(&format!("{ENDPOINT}/moto-api/"))
            && answers("http://127.0.0.1:9000/")
            && answers("http://127.0.0.1:8088/__standin__/health")
        {
            return;
        }
        let status = Command::new(repo().join("local/up"))
            .status()
            .expect("run local/up");
        assert!(status.success(), "local/up failed; see local/.state/logs/");
    });
}

/// Runs the stock AWS CLI from the project's venv against the local stack.
pub fn aws_cli(args: &[&str]) -> String {
    ensure_stack();
    let out = Command::new(repo().join("local/.venv/bin/aws"))
        .args([
            "--endpoint-url",
            ENDPOINT,
            "--region",
            REGION,
            "--output",
            "json",
        ])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run aws");
    assert!(
        out.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
