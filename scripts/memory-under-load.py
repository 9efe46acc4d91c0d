#!/usr/bin/env python3
"""Peak memory of a `proofmill serve` node under a queue and stream load (docs/operations.md,
"Limits and abuse").

Two nodes share a fresh PostgreSQL database: a worker node, which proves one long job (the
load's jobs wait for it), and the measured node, which takes the load and proves nothing (its
CPU worker may use 1 MiB, so every job is left to the worker node): JOBS aggregate jobs with
about SIZE_MB of input each are submitted to it, STREAMS event streams are opened on them, and
its job list is read at its largest page size again and again. The measured node's resident
memory is sampled throughout (/proc/PID/status) and reported per phase, with its peak (VmHWM):
what a node's API, job store, dispatcher and streams cost, without a proof's memory.

    usage: scripts/memory-under-load.py --database-url postgres://USER@HOST:PORT/postgres
               [--binary target/release/proofmill] [--jobs 1000] [--size-mb 1] [--streams 200]

The admin URL's server gets a database of its own (created with psql). Standard library only.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HEX_ONE = "0x" + "0" * 63 + "1"


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def request(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {"content-type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def psql():
    for candidate in ["psql"] + [f"/usr/lib/postgresql/{v}/bin/psql" for v in range(20, 11, -1)]:
        if shutil.which(candidate) or os.path.exists(candidate):
            return candidate
    sys.exit("memory-under-load: psql not found")


def start_node(binary, config):
    node = subprocess.Popen(
        [binary, "--backend", "cpu", "serve", "--config", config],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = node.stdout.readline()
    return node, int(line.strip().rsplit(":", 1)[1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True, help="an admin URL of a PostgreSQL server")
    parser.add_argument("--binary", default="target/release/proofmill")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--size-mb", type=float, default=1.0)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--busy-circuit", default="rollup/d24-t16-e4-c4")
    args = parser.parse_args()

    name = f"pm_memory_{random.getrandbits(48):012x}"
    subprocess.run([psql(), args.database_url, "-qc", f"CREATE DATABASE {name}"], check=True)
    database = args.database_url.rsplit("/", 1)[0] + "/" + name
    data = tempfile.mkdtemp(prefix="proofmill-memory-")
    limit = int(args.size_mb * 2 * (1 << 20)) + (1 << 20)
    common = (
        f"data_dir = {json.dumps(data)}\n"
        f"database_url = {json.dumps(database)}\n"
        "listen = \"127.0.0.1:0\"\n"
        "max_queued_jobs_per_tenant = 100000\n"
        f"max_event_streams_per_tenant = {args.streams + 16}\n"
        f"max_body_bytes = {limit}\n"
        "gpu_workers = false\nlease_secs = 30\n"
    )
    configs = {}
    for node, extra in [("worker", ""), ("api", f"cpu_memory_bytes = {1 << 20}\n")]:
        configs[node] = os.path.join(data, f"{node}.toml")
        with open(configs[node], "w") as f:
            f.write(common + f"node_id = \"{node}\"\n" + extra)
    worker, _ = start_node(args.binary, configs["worker"])
    api, port = start_node(args.binary, configs["api"])
    pid = api.pid
    samples = []
    phase = ["start"]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                samples.append((phase[0], rss_kib(pid)))
            except OSError:
                return
            time.sleep(0.25)

    threading.Thread(target=sample, daemon=True).start()
    streams = []
    try:
        status, _ = request(port, "GET", "/healthz")
        assert status == 200
        # The worker node proves one long job (its keygen comes first on a fresh data
        # directory); everything queued after it waits for it.
        out = subprocess.run(
            [args.binary, "example-batch", "--circuit", args.busy_circuit],
            capture_output=True, text=True, check=True,
        )
        body = json.dumps({"type": "prove", "circuit": args.busy_circuit, "input": json.loads(out.stdout)})
        status, accepted = request(port, "POST", "/v1/jobs", body)
        assert status == 202, accepted
        busy = json.loads(accepted)["id"]
        while True:
            view = json.loads(request(port, "GET", f"/v1/jobs/{busy}")[1])
            if view["status"] == "running":
                assert view["node"] == "worker", view
                break
            time.sleep(0.2)
        phase[0] = "idle"
        time.sleep(10)

        half = int(args.size_mb * (1 << 20) / 2)
        envelope = {
            "format": "proofmill-proof/1", "circuit": "transfer_batch/d16-b8", "k": 17,
            "vk_hash": "0x" + "0" * 64, "transcript": "poseidon",
            "instances": [[HEX_ONE, HEX_ONE, HEX_ONE]],
            "proof": "0x" + "ab" * (half // 2),
        }
        payload = json.dumps({"type": "aggregate", "inputs": [{"job": busy}, {"proof": envelope}, {"proof": envelope}]})
        phase[0] = f"{args.jobs} jobs of {len(payload) / (1 << 20):.2f} MiB submitted"
        started = time.time()
        ids = []
        for _ in range(args.jobs):
            status, accepted = request(port, "POST", "/v1/jobs", payload)
            assert status == 202, accepted[:300]
            ids.append(json.loads(accepted)["id"])
        submit_seconds = time.time() - started
        time.sleep(5)

        phase[0] = f"{args.streams} event streams open"
        for i in range(args.streams):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            conn.request("GET", f"/v1/jobs/{ids[i % len(ids)]}/events")
            response = conn.getresponse()
            assert response.status == 200
            response.readline()
            streams.append((conn, response))
        time.sleep(15)

        phase[0] = "20 lists of 500 jobs, streams open"
        for _ in range(20):
            status, _ = request(port, "GET", "/v1/jobs?limit=500")
            assert status == 200
        time.sleep(5)
        status, view = request(port, "GET", f"/v1/jobs/{busy}")
        still = json.loads(view)["status"]
        peak = rss_kib(pid, "VmHWM")
    finally:
        stop.set()
        for node in (api, worker):
            node.send_signal(signal.SIGKILL)
            node.wait()
        shutil.rmtree(data, ignore_errors=True)
        subprocess.run([psql(), args.database_url, "-qc", f"DROP DATABASE IF EXISTS {name}"])

    print(f"measured node: {args.jobs} jobs of ~{args.size_mb} MiB submitted in {submit_seconds:.1f} s, "
          f"{args.streams} event streams, 20 lists of 500; the busy job was {still} at the end")
    seen = []
    for n, _ in samples:
        if n not in seen:
            seen.append(n)
    for n in seen:
        values = [kib for p, kib in samples if p == n]
        print(f"{n:<40} RSS max {max(values) / 1024:8.1f} MiB")
    print(f"peak resident memory (VmHWM) {peak / 1024:.1f} MiB")


if __name__ == "__main__":
    sys.exit(main())
