"""Local stack: moto server with the patches stepdeploy's pipeline needs.

Runs moto's werkzeug app in-process (so it can be patched) until SIGTERM/SIGINT:

    cd local && python -m stack [--host 127.0.0.1] [--port 5000] \
        [--lambda-endpoint http://127.0.0.1:9000]

Readiness: GET http://127.0.0.1:5000/moto-api/ answers 200.  What the
patches, the call counter and the fault injector do: README.md next to this file.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from . import MOTO_VERSION, log, patches
from .counter import CallCounter
from .emulator import DEFAULT_LAMBDA_ENDPOINT
from .iam_enforce import IamEnforcer
from .protocol import error_response


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--lambda-endpoint", default=DEFAULT_LAMBDA_ENDPOINT,
                        help="base URL of `cargo lambda watch`")
    args = parser.parse_args(argv)

    # moto's Step Functions interpreter calls back into the server on MOTO_PORT.
    os.environ["MOTO_PORT"] = str(args.port)
    patches.apply(args.lambda_endpoint)

    from werkzeug.serving import make_server
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    # Outermost first: call counter / fault injector, local IAM, moto.
    app = CallCounter(IamEnforcer(DomainDispatcherApplication(create_backend_app), error_response))
    log(f"iam: stepdeploy's calls authorised by local/stack/iam_enforce.py"
        f"{' (AUDIT mode: denials only logged; not for tests/CI)' if app.app.audit else ''}")
    try:
        server = make_server(args.host, args.port, app, threaded=True,
                             request_handler=MotoRequestHandler)
    except OSError as e:
        log(f"cannot listen on {args.host}:{args.port}: {e}")
        return 1

    def stop(signum: int, _frame: Any) -> None:
        log(f"signal {signum}: stopping")
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"moto {MOTO_VERSION} listening on http://{args.host}:{args.port} "
        f"(lambda emulator {args.lambda_endpoint})")
    server.serve_forever()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
