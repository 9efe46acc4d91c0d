#!/usr/bin/env python3
"""Peak memory of a `proofmill serve` node under a queue and stream load (docs/operations.md,
"Limits and abuse"): one long proof keeps the device busy, then JOBS aggregate jobs with about
SIZE_MB of input each are queued behind it, STREAMS event streams are opened on them, and the
job list is read at its largest page size again and again. The node's resident memory is
sampled throughout (/proc/PID/status) and reported per phase, with its peak (VmHWM).

    usage: scripts/memory-under-load.py [--binary target/release/proofmill] [--jobs 1000]
                                        [--size-mb 1] [--streams 200]

Standard library only. The node runs on loopback with a throwaway data directory.
"""

import argparse
import http.client
import json
import os
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="target/release/proofmill")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--size-mb", type=float, default=1.0)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--busy-circuit", default="rollup/d24-t16-e4-c4")
    args = parser.parse_args()

    data = tempfile.mkdtemp(prefix="proofmill-memory-")
    config = os.path.join(data, "config.toml")
    with open(config, "w") as f:
        f.write(
            "listen = \"127.0.0.1:0\"\n"
            f"data_dir = {json.dumps(data)}\n"
            "max_queued_jobs_per_tenant = 100000\n"
            f"max_event_streams_per_tenant = {args.streams + 16}\n"
            f"max_body_bytes = {int(args.size_mb * 2 * (1 << 20)) + (1 << 20)}\n"
            "cpu_workers = 1\ngpu_workers = false\n"
        )
    server = subprocess.Popen(
        [args.binary, "--backend", "cpu", "serve", "--config", config],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = server.stdout.readline()
    port = int(line.strip().rsplit(":", 1)[1])
    pid = server.pid
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

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        status, example = request(port, "GET", "/healthz")
        assert status == 200
        # The device is kept busy by one long proof (its keygen comes first on a fresh data
        # directory): everything queued after it waits.
        out = subprocess.run(
            [args.binary, "example-batch", "--circuit", args.busy_circuit],
            capture_output=True, text=True, check=True,
        )
        body = json.dumps({"type": "prove", "circuit": args.busy_circuit, "input": json.loads(out.stdout)})
        status, accepted = request(port, "POST", "/v1/jobs", body)
        assert status == 202, accepted
        busy = json.loads(accepted)["id"]
        while json.loads(request(port, "GET", f"/v1/jobs/{busy}")[1])["status"] != "running":
            time.sleep(0.2)
        phase[0] = "busy, idle API"
        time.sleep(10)

        # JOBS aggregate jobs of SIZE_MB each, waiting for the busy job.
        half = int(args.size_mb * (1 << 20) / 2)
        envelope = {
            "format": "proofmill-proof/1", "circuit": "transfer_batch/d16-b8", "k": 17,
            "vk_hash": "0x" + "0" * 64, "transcript": "poseidon",
            "instances": [[HEX_ONE, HEX_ONE, HEX_ONE]],
            "proof": "0x" + "ab" * (half // 2),
        }
        payload = json.dumps({"type": "aggregate", "inputs": [{"job": busy}, {"proof": envelope}, {"proof": envelope}]})
        phase[0] = f"submitting {args.jobs} jobs of {len(payload) / (1 << 20):.2f} MiB"
        started = time.time()
        ids = []
        for _ in range(args.jobs):
            status, accepted = request(port, "POST", "/v1/jobs", payload)
            assert status == 202, accepted[:300]
            ids.append(json.loads(accepted)["id"])
        submit_seconds = time.time() - started

        # STREAMS event streams on them, held open.
        phase[0] = f"{args.streams} event streams open"
        streams = []
        for i in range(args.streams):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            conn.request("GET", f"/v1/jobs/{ids[i % len(ids)]}/events")
            response = conn.getresponse()
            assert response.status == 200
            response.readline()
            streams.append((conn, response))
        time.sleep(10)

        # The largest job lists, over and over, while the streams stay open.
        phase[0] = "lists of 500 jobs, streams open"
        for _ in range(20):
            status, page = request(port, "GET", "/v1/jobs?limit=500")
            assert status == 200
        time.sleep(5)
        phase[0] = "end"
        time.sleep(1)
        peak = rss_kib(pid, "VmHWM")
    finally:
        stop.set()
        server.send_signal(signal.SIGKILL)
        server.wait()
        shutil.rmtree(data, ignore_errors=True)

    print(f"queued {args.jobs} jobs of ~{args.size_mb} MiB in {submit_seconds:.1f} s; {args.streams} streams")
    seen = []
    for name, _ in samples:
        if name not in seen:
            seen.append(name)
    for name in seen:
        values = [kib for n, kib in samples if n == name]
        print(f"{name:<45} RSS max {max(values) / 1024:8.1f} MiB  (last {values[-1] / 1024:.1f} MiB)")
    print(f"peak resident memory (VmHWM): {peak / 1024:.1f} MiB")


if __name__ == "__main__":
    sys.exit(main())
