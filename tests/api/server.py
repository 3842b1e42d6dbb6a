"""A real ``recommender serve`` in a subprocess, for the tests that need processes: several
workers, SIGKILL, a model swap under load. Ports come from 18100-18199."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.api.conftest import API_KEYS
from tests.conftest import ROOT

PORTS = range(18100, 18200)


def free_port() -> int:
    """A port of this suite's range that nothing listens on."""
    for port in PORTS:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18100-18199")


def worker_pids(server_pid: int) -> list[int]:
    """Pids of the live worker processes a server started (spawned: ``spawn_main`` in their
    command line); a dead one not yet reaped is a zombie and is not counted."""
    found = []
    for child in psutil.Process(server_pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child.pid)
        except psutil.Error:
            continue
    return found


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log: Path

    def workers(self) -> list[int]:
        """Pids of the worker processes (the process itself when it serves alone)."""
        return worker_pids(self.process.pid) or [self.process.pid]

    def connect(self, timeout: float = 30) -> Connection:
        return Connection(self, timeout)

    def kill(self) -> None:
        """SIGKILL the whole server (its workers too), as a crash would."""
        for pid in [*self.workers(), self.process.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=30)


class Connection:
    """One keep-alive HTTP connection; :attr:`worker` is the pid of the process that holds its
    server side (found through the kernel's socket table)."""

    def __init__(self, server: Server, timeout: float) -> None:
        self.http = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
        self.http.connect()
        self.local_port = self.http.sock.getsockname()[1]
        self.worker = self._owner(server)

    def _owner(self, server: Server) -> int | None:
        self.request("GET", "/healthz")  # accepted by now
        for pid in server.workers():
            for conn in psutil.Process(pid).net_connections(kind="tcp"):
                if conn.raddr and conn.raddr.port == self.local_port:
                    return pid
        return None

    def request(self, method: str, path: str, body=None, key: str | None = None
                ) -> tuple[int, dict | str]:
        headers = {"X-API-Key": key} if key else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.http.request(method, path, body=data, headers=headers)
        response = self.http.getresponse()
        raw = response.read().decode()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw

    def close(self) -> None:
        self.http.close()


def worker_connections(server: Server, n_workers: int, tries: int = 200) -> list[Connection]:
    """One open connection to each of ``n_workers`` workers (fresh connections until every
    worker has accepted one)."""
    held: dict[int, Connection] = {}
    spare: list[Connection] = []
    for _ in range(tries):
        conn = server.connect()
        if conn.worker is not None and conn.worker not in held:
            held[conn.worker] = conn
        else:
            spare.append(conn)
        if len(held) == n_workers:
            break
    for conn in spare:
        conn.close()
    assert len(held) == n_workers, f"only {len(held)} of {n_workers} workers accepted"
    return list(held.values())


@contextmanager
def serving(db_url: str, artifacts: Path, log_dir: Path, workers: int = 1,
            ready_timeout: float = 240) -> Iterator[Server]:
    """``recommender serve`` on a free port until the block ends (then terminated)."""
    server = start(db_url, artifacts, log_dir, workers, ready_timeout)
    try:
        yield server
    finally:
        stop(server)


def start(db_url: str, artifacts: Path, log_dir: Path, workers: int = 1,
          ready_timeout: float = 240) -> Server:
    port = free_port()
    log = log_dir / f"server-{port}-{time.monotonic_ns()}.log"
    env = {**os.environ, "RECOMMENDER_API_KEYS": API_KEYS, "PYTHONPATH": str(ROOT)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    cmd = [sys.executable, "-m", "recommender.cli", "serve", "--db", db_url, "--artifacts",
           str(artifacts), "--port", str(port), "--workers", str(workers), "--log-level",
           "warning"]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, port, log)
    deadline = time.monotonic() + ready_timeout
    while True:
        assert process.poll() is None, f"the server exited: {log.read_text()[-2000:]}"
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            probe.request("GET", "/readyz")
            ready = probe.getresponse().status == 200
            probe.close()
            if ready and len(server.workers()) == workers:
                # every worker loads its model before it accepts; give the others a moment
                if _all_ready(server, workers):
                    return server
        except OSError:
            pass
        assert time.monotonic() < deadline, f"not ready in {ready_timeout} s: {log.read_text()}"
        time.sleep(0.3)


def _all_ready(server: Server, workers: int) -> bool:
    """Whether ``workers`` different workers have answered /readyz with 200."""
    seen: set[int] = set()
    for _ in range(40 * workers):
        try:
            conn = server.connect(timeout=5)
        except OSError:
            return False
        status, _ = conn.request("GET", "/readyz")
        if status == 200 and conn.worker is not None:
            seen.add(conn.worker)
        conn.close()
        if len(seen) == workers:
            return True
    return False


def stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
