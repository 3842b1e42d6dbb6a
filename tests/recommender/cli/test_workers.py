"""``recommender serve --workers N``'s supervisor (recommender.cli.workers), run for real: worker
processes with their own sockets, connections spread over them, a dead worker replaced, a start-up
failure and a busy port reported, SIGTERM stopping everything."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter

import psutil
import pytest

from recommender.cli.workers import reuse_port_supported
from tests.api.server import free_port, worker_pids
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(not reuse_port_supported(),
                                reason="SO_REUSEPORT spreads connections only on Linux")

SERVE = ("import sys; from recommender.cli.workers import serve_in_workers; "
         "sys.exit(serve_in_workers(sys.argv[1], '127.0.0.1', int(sys.argv[2]), "
         "int(sys.argv[3]), factory=True, log_level='warning'))")


def _start(app: str, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", SERVE, f"tests.recommender.cli.pid_apps:{app}",
                             str(port), str(workers)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _pid_of(conn: http.client.HTTPConnection) -> int:
    conn.request("GET", "/")
    return int(conn.getresponse().read())


def _workers(server: subprocess.Popen) -> set[int]:
    return set(worker_pids(server.pid))


def _until(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
            if found:
                return found
        except OSError:
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _answering(port: int, workers: int) -> set[int]:
    """Wait until ``workers`` different pids have answered; returns them."""
    seen: set[int] = set()

    def all_seen():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            seen.add(_pid_of(conn))
        finally:
            conn.close()
        return seen if len(seen) >= workers else None

    return _until(all_seen)


@pytest.fixture
def two_workers():
    port = free_port()
    server = _start("pid_app", port, 2)
    try:
        _answering(port, 2)
        yield server, port
    finally:
        if server.poll() is None:
            for pid in [*_workers(server), server.pid]:
                os.kill(pid, signal.SIGKILL)
        server.wait(timeout=30)


def test_connections_opened_together_are_spread_over_the_workers(two_workers):
    # uvicorn's shared socket let one worker accept such a burst nearly whole (32/0, 30/2)
    server, port = two_workers
    for _ in range(5):
        conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(24)]
        for conn in conns:
            conn.connect()
        held = Counter(_pid_of(conn) for conn in conns)
        for conn in conns:
            conn.close()
        assert set(held) == _workers(server)
        assert min(held.values()) >= 3, held  # binomial(24, 1/2): below 3 once in 10^5 rounds


def test_a_dead_worker_is_replaced(two_workers):
    server, port = two_workers
    before = _workers(server)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)

    def replaced():
        now = _workers(server)
        return now if len(now) == 2 and victim not in now else None

    after = _until(replaced)
    assert after & before == before - {victim}
    assert _answering(port, 2) == after  # the new worker serves on the same port


def test_sigterm_stops_every_worker(two_workers):
    server, _ = two_workers
    workers = _workers(server)
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=60) == 0
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
                   for pid in workers)


@pytest.mark.parametrize("app", ["failing_app", "no_such_app"])
def test_a_worker_that_cannot_start_stops_the_server(app):
    # failing_app's start-up raises; no_such_app is not in the module (uvicorn exits 1 for it)
    server = _start(app, free_port(), 2)
    out, _ = server.communicate(timeout=120)
    assert server.returncode == 1
    assert "could not start: stopping the server" in out
    assert out.count("started 2 workers") == 1  # no worker was started again


def test_a_busy_port_is_one_clear_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = _start("pid_app", taken.getsockname()[1], 2)
        out, _ = server.communicate(timeout=60)
    assert server.returncode == 1
    assert "cannot listen on 127.0.0.1:" in out and "Address already in use" in out
    assert "Traceback" not in out
