# Source this to talk to the local stack with the stock AWS CLI and the Rust SDK:
#   source local/env.sh && aws stepfunctions list-state-machines
# It points every AWS client (and the stepdeploy CLI) at moto (orchestrator
# account 123456789012) with dummy credentials, and puts local/bin (aws),
# local/.venv/bin and the CLI on PATH.
_stepdeploy_local="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
export AWS_ENDPOINT_URL="${STEPDEPLOY_AWS_ENDPOINT:-http://127.0.0.1:5000}"
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_SESSION_TOKEN=testing
export AWS_REGION=eu-west-1
export AWS_DEFAULT_REGION=eu-west-1
export AWS_PAGER=""
export STEPDEPLOY_CONFIG_DIR="$_stepdeploy_local/.state/environments"
case ":$PATH:" in *":$_stepdeploy_local/.venv/bin:"*) ;; *) export PATH="$_stepdeploy_local/.venv/bin:$PATH" ;; esac
# `aws` = local/bin/aws, ahead of local/.venv/bin/aws: the same pinned AWS CLI v1,
# but with AWS_ENDPOINT_URL honoured for sqs too (the stock v1 sends `aws sqs ...`
# to https://<region>.queue.amazonaws.com whatever the environment says; see
# local/stack/awscli_endpoints.py).
case ":$PATH:" in *":$_stepdeploy_local/bin:"*) ;; *) export PATH="$_stepdeploy_local/bin:$PATH" ;; esac
# The stepdeploy CLI as local/up builds it (target/debug/stepdeploy).
_stepdeploy_bin="${CARGO_TARGET_DIR:-$(cd "$_stepdeploy_local/.." && pwd)/target}/debug"
case ":$PATH:" in *":$_stepdeploy_bin:"*) ;; *) export PATH="$_stepdeploy_bin:$PATH" ;; esac
unset _stepdeploy_bin
unset _stepdeploy_local
