"""The local stack: moto with the patches stepdeploy's pipeline needs, and its helpers.

    python -m stack [--host 127.0.0.1] [--port 5000] [--lambda-endpoint URL]
    (run from local/, as local/up does; see README.md next to this file)

Kept free of heavy imports: .ci/check_template.py and local/seed.py import
stack.cfn_render, which loads this first.
"""

from __future__ import annotations

# The patches reach into moto's internals: they were checked against this
# release only (see patches/ and README.md).
MOTO_VERSION = "5.2.5"


def log(msg: str) -> None:
    # The prefix the launcher's log has always had (grep-friendly in moto.log).
    print(f"[moto_launcher] {msg}", flush=True)
