"""Cold start, peak memory and package size of every function, against a
lambda_runtime hello-world built the same way, in the same run.

    python3 bench/cold_start.py [--runs 9] [--no-build]

1. builds the release binaries for this machine (`cargo build --release`,
   the workspace's release profile: lto, codegen-units = 1, strip, opt-level
   s — the same profile `infra/package` uses for the arm64 zips);
2. for each function and the baseline `hello-lambda`, `--runs` times: starts
   the binary against a minimal Lambda Runtime API served here (the
   `/2018-06-01/runtime/invocation/next` and `/response` / `/error`
   endpoints, as Lambda serves them) and measures process start -> first
   invocation answered, and the process's peak RSS (VmHWM) at that moment;
3. prints medians, the ratio to the baseline measured in the same run, and
   the zip sizes from `bench/results/package-sizes.json`; writes
   `bench/results/cold-start.json`.

The first invocation's event is `{}`: every function initialises fully
(tracing, environment configs, AWS SDK config and clients, HTTP client), then
answers it — a validation error for the phases, an echo for the baseline — so
the figure is start-up plus one dispatch, without AWS calls. No network:
AWS_ENDPOINT_URL points at a closed local port.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = sorted(p.name for p in (ROOT / "functions").iterdir()
                   if (p / "Cargo.toml").exists() and p.name != "shared")
BASELINE = "hello-lambda"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
PREFIX = "/2018-06-01/runtime"


class RuntimeApi(BaseHTTPRequestHandler):
    """One invocation, then the process is stopped."""

    server: "Server"

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        if self.path != f"{PREFIX}/invocation/next":
            self.send_error(404)
            return
        s = self.server
        if s.served:
            # The process asks for its second event: hold it until it is killed.
            s.done.wait(10)
            self.send_error(503)
            return
        s.served = True
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                         "arn:aws:lambda:eu-west-1:123456789012:function:bench")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        s = self.server
        if self.path.endswith("/response") or self.path.endswith("/error"):
            s.answered_at = time.perf_counter()
            s.outcome = "response" if self.path.endswith("/response") else "error"
            s.rss_kb = peak_rss_kb(s.pid)
            s.answered.set()
        elif self.path.endswith("/init/error"):
            s.outcome = "init error"
            s.answered.set()
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), RuntimeApi)
        self.served = False
        self.answered = threading.Event()
        self.done = threading.Event()
        self.answered_at = 0.0
        self.outcome = ""
        self.rss_kb = 0
        self.pid = 0

    def handle_error(self, request, client_address):
        # The process is killed while its request for a second event waits:
        # a broken pipe here is expected, not worth a traceback.
        pass


def peak_rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def runtime_env(binary: Path, server: Server) -> dict[str, str]:
    """What Lambda gives a function, pointed at the script's Runtime API."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": binary.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{binary.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_EC2_METADATA_DISABLED": "true",
        "STEPDEPLOY_CONFIG_DIR": str(ROOT / "infra" / "environments"),
    }


def first_answer(binary: Path, wrapper: list[str], timeout: float,
                 at_answer=lambda proc: None) -> tuple[Server, float]:
    """Starts `binary` (under `wrapper`, if any) against a fresh Runtime API,
    waits for its first answer, runs `at_answer`, then stops it. Returns the
    server (what it saw) and the process's start time."""
    server = Server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    start = time.perf_counter()
    proc = subprocess.Popen([*wrapper, str(binary)], env=runtime_env(binary, server),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server.pid = proc.pid
    answered = server.answered.wait(timeout)
    at_answer(proc)
    proc.kill()
    server.done.set()
    proc.wait()
    server.shutdown()
    server.server_close()
    if not answered:
        raise SystemExit(f"{binary.name}: no answer within {timeout:.0f} s")
    return server, start


def one_run(binary: Path) -> tuple[float, int, str]:
    server, start = first_answer(binary, [], 30)
    return (server.answered_at - start) * 1000, server.rss_kb, server.outcome


def instructions(binary: Path) -> int:
    """Instructions from process start to the first answer, under callgrind:
    a count that does not move with the machine's load (valgrind required)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        # Dump the counts as of the answer, before the process is stopped.
        first_answer(binary, ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"], 120,
                     at_answer=lambda proc: subprocess.run(["callgrind_control", "--dump", str(proc.pid)],
                                                           capture_output=True, check=False))
        for dump in sorted(Path(tmp).glob("callgrind.out*")):
            for line in dump.read_text().splitlines():
                if line.startswith("totals:") and int(line.split()[1]) > 0:
                    return int(line.split()[1])
    raise SystemExit(f"{binary.name}: callgrind wrote no totals")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--seed", type=int, default=1, help="order of the functions in each round")
    ap.add_argument("--instructions", action="store_true",
                    help="instead of timing: count instructions to the first answer under callgrind")
    args = ap.parse_args()
    names = FUNCTIONS + [BASELINE]
    if not args.no_build:
        cmd = ["cargo", "build", "--release", "--quiet"] + [a for n in names for a in ("-p", n)]
        print("building:", " ".join(cmd), flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True)
    if args.instructions:
        counts = {n: instructions(TARGET / "release" / n) for n in names}
        base = counts[BASELINE]
        print("| binary | instructions to first answer | × hello-world |")
        print("|---|---|---|")
        for n in names:
            print(f"| {n} | {counts[n] / 1e6:.2f} M | {counts[n] / base:.2f} |")
        return 0
    sizes = {}
    sizes_file = ROOT / "bench" / "results" / "package-sizes.json"
    if sizes_file.exists():
        sizes = json.loads(sizes_file.read_text()).get("functions", {})
    results: dict[str, dict] = {}
    # Interleave the functions run by run, so drift on the machine hits all
    # alike, in a fresh order each round (seeded: reproducible), so none is
    # always first after the script's own pause or always last.
    samples: dict[str, list[tuple[float, int, str]]] = {n: [] for n in names}
    order = random.Random(args.seed)
    for _ in range(args.runs):
        for n in order.sample(names, len(names)):
            samples[n].append(one_run(TARGET / "release" / n))
    base_ms = statistics.median(s[0] for s in samples[BASELINE])
    for n in names:
        ms = statistics.median(s[0] for s in samples[n])
        rss = max(s[1] for s in samples[n])
        results[n] = {
            "cold_start_ms_median": round(ms, 2),
            "cold_start_ms_min": round(min(s[0] for s in samples[n]), 2),
            "ratio_to_hello_world": round(ms / base_ms, 2),
            "peak_rss_mb": round(rss / 1024, 1),
            "binary_bytes": (TARGET / "release" / n).stat().st_size,
            "zip_bytes_arm64": sizes.get(n, {}).get("zip_bytes"),
            "first_answer": samples[n][0][2],
            "samples_ms": [round(s[0], 3) for s in samples[n]],
        }
    out = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "runs": args.runs,
        "targets": {"cold_start_ratio": 1.5, "peak_rss_mb": 48, "zip_mb": 8},
        "functions": results,
    }
    path = ROOT / "bench" / "results" / "cold-start.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"| function | cold start, median ms | × hello-world | peak RSS MB | binary KiB | arm64 zip KiB |")
    print("|---|---|---|---|---|---|")
    for n in names:
        r = results[n]
        z = r["zip_bytes_arm64"]
        print(f"| {n} | {r['cold_start_ms_median']:.1f} | {r['ratio_to_hello_world']:.2f} | "
              f"{r['peak_rss_mb']:.1f} | {r['binary_bytes'] // 1024} | {z // 1024 if z else '-'} |")
    print(f"written: {path.relative_to(ROOT)}")
    failed = [n for n in FUNCTIONS if results[n]["ratio_to_hello_world"] > 1.5
              or results[n]["peak_rss_mb"] > 48]
    if failed:
        print("over target:", ", ".join(failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
