"""Signed DescribeKeyPairs throughput and latency of the ECS emulator at 1, 8 and 32 clients.

Starts its own emulator (fresh state, free port, request log off), creates a few key pairs, then
lets N clients send v1-signed DescribeKeyPairs over keep-alive connections for a fixed time and
reports requests/s and p50/p99 latency.
Clients are threads spread over a few processes, so the client side is not held back by one GIL.
This is a measurement, not a test: it asserts nothing.

    .venv-bench/bin/python benchmarks/emulator_load.py [--quick]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import multiprocessing
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import quote

from benchlib import Emulator, log


def _enc(value: str) -> str:
    return quote(value, safe="-_.~")


def signed_query(key_id: str, secret: str, params: dict[str, str]) -> str:
    """The v1 (HMAC-SHA1) signature, written here from the published description."""
    full = dict(params, Format="JSON", Version="2014-05-26", AccessKeyId=key_id, SignatureMethod="HMAC-SHA1",
                SignatureVersion="1.0", SignatureNonce=uuid.uuid4().hex,
                Timestamp=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    canonical = "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(full.items()))
    to_sign = f"POST&{_enc('/')}&{_enc(canonical)}"
    sig = base64.b64encode(hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()).decode()
    return canonical + "&Signature=" + _enc(sig)


def call(conn: http.client.HTTPConnection, key: tuple[str, str], params: dict[str, str]) -> dict:
    conn.request("POST", "/?" + signed_query(key[0], key[1], params), headers={"Content-Length": "0"})
    resp = conn.getresponse()
    body = json.loads(resp.read())
    if resp.status != 200:
        raise RuntimeError(f"{params['Action']}: {resp.status} {body.get('Code')}")
    return body


class RawClient:
    """A minimal keep-alive HTTP/1.1 client: the clients share the CPUs with the server, so the
    less work they do per request, the more of the machine the measurement gives the server."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = None
        self.buf = b""

    def _connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def post(self, query: str) -> int:
        if self.sock is None:
            self._connect()
        self.sock.sendall(f"POST /?{query} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Length: 0\r\n\r\n".encode())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        head, _sep, rest = self.buf.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _sep, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            rest += chunk
        self.buf = rest[length:]
        return status

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None


def _client_process(port: int, key: tuple[str, str], threads: int, seconds: float, start_at: float, out) -> None:
    latencies: list[list[float]] = [[] for _thread in range(threads)]
    errors = [0] * threads

    def worker(i: int) -> None:
        client = RawClient(port)
        params = {"Action": "DescribeKeyPairs", "RegionId": "cn-hangzhou", "PageSize": "50"}
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + seconds
        while time.time() < end:
            t0 = time.perf_counter()
            try:
                status = client.post(signed_query(key[0], key[1], params))
            except OSError:
                errors[i] += 1
                client.close()
                continue
            if status != 200:
                errors[i] += 1
                continue
            latencies[i].append(time.perf_counter() - t0)
        client.close()

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put(([x for lat in latencies for x in lat], sum(errors)))


def load(port: int, key: tuple[str, str], clients: int, seconds: float) -> dict:
    procs = min(clients, max(2, os.cpu_count() or 2))
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    queue: multiprocessing.Queue = multiprocessing.Queue()
    start_at = time.time() + 0.5
    ps = [multiprocessing.Process(target=_client_process, args=(port, key, n, seconds, start_at, queue))
          for n in per if n]
    for p in ps:
        p.start()
    latencies, errors = [], 0
    for _proc in ps:
        lat, err = queue.get()
        latencies += lat
        errors += err
    for p in ps:
        p.join()
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")

    return {"clients": clients, "requests": len(latencies), "errors": errors,
            "rps": len(latencies) / seconds, "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


def measure(quick: bool, keypairs: int = 20) -> dict:
    """Throughput and latency at 1, 8 and 32 clients against a fresh emulator (request log off)."""
    seconds = 1.0 if quick else 5.0
    with Emulator(log=False) as emulator:
        conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=30)
        for i in range(keypairs):
            call(conn, emulator.key, {"Action": "CreateKeyPair", "RegionId": emulator.region,
                                      "KeyPairName": f"bench-{i:03d}"})
        conn.close()
        levels = []
        for clients in (1, 8, 32):
            levels.append(load(emulator.port, emulator.key, clients, seconds))
            one = levels[-1]
            log(f"  emulator, {clients:2d} clients: {one['rps']:6.0f} req/s, p50 {one['p50_ms']:.2f} ms, "
                f"p99 {one['p99_ms']:.2f} ms, {one['errors']} errors")
    return {"seconds": seconds, "keypairs": keypairs, "levels": levels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: one second per level")
    print(json.dumps(measure(parser.parse_args().quick), indent=2))


if __name__ == "__main__":
    main()
