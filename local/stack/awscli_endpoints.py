"""The stock AWS CLI v1 (local/.venv, awscli pinned in local/requirements.lock)
with configured endpoints honoured for every service.

    local/bin/aws ...      (what `source local/env.sh` puts first on PATH)

Why: AWS CLI v1's customization awscli/customizations/overridesslcommonname.py
(update_endpoint_url, run before each command) sets `--endpoint-url
https://<region>.queue.amazonaws.com` for sqs in every region (and emr,
rds/docdb/neptune in us-east-1, health) whenever --endpoint-url is not on the
command line.  An explicit endpoint comes first in botocore's resolution, so
AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SQS and the config file's endpoint_url
are all ignored for those services: after `source local/env.sh`, `aws sqs
list-queues` went to the real SQS.  Every awscli 1.x does this (aws/aws-cli
issue #8737, open; the handler is unchanged on the v1 branch); AWS CLI v2
does not have the customization.

Fix: before the CLI starts, update_endpoint_url is wrapped: when botocore's
own configured-endpoint chain (AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL,
the config file's services section / endpoint_url, unless
AWS_IGNORE_CONFIGURED_ENDPOINT_URLS) names an endpoint for the service, the
override is skipped and botocore resolves that endpoint as for any other
service; otherwise the CLI behaves exactly as shipped.  Nothing else changes.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def configured_endpoint(session: Any, service: str) -> str | None:
    """The endpoint botocore's configured-endpoint chain gives `service`, if any."""
    try:
        if session.get_config_variable("ignore_configured_endpoint_urls"):
            return None
    except Exception:
        pass
    try:
        from botocore.configprovider import ConfiguredEndpointProvider

        return ConfiguredEndpointProvider(
            full_config=session.full_config,
            scoped_config=session.get_scoped_config(),
            client_name=service,
        ).provide()
    except Exception:
        # No provider (or an unreadable config): the environment variables only.
        return (os.environ.get(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}")
                or os.environ.get("AWS_ENDPOINT_URL") or None)


def install() -> None:
    from awscli.customizations import overridesslcommonname

    original = overridesslcommonname.update_endpoint_url
    if getattr(original, "_stepdeploy", False):
        return

    def update_endpoint_url(session: Any, parsed_globals: Any, **kwargs: Any) -> None:
        service = getattr(parsed_globals, "command", None)
        if (service in overridesslcommonname.SSL_COMMON_NAMES
                and parsed_globals.endpoint_url is None
                and configured_endpoint(session, service)):
            return
        original(session, parsed_globals, **kwargs)

    update_endpoint_url._stepdeploy = True  # type: ignore[attr-defined]
    # awscli.handlers registers the module's function when the CLI driver is
    # created, so replacing it here (before) is enough.
    overridesslcommonname.update_endpoint_url = update_endpoint_url


def main() -> int:
    if os.environ.get("LC_CTYPE", "") == "UTF-8":  # as the stock `aws` script
        os.environ["LC_CTYPE"] = "en_US.UTF-8"
    install()
    import awscli.clidriver

    return awscli.clidriver.main()


if __name__ == "__main__":
    sys.exit(main())
