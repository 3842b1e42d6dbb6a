"""Several server processes, each with its own listening socket on the same port.

uvicorn's ``--workers`` hands every worker one shared listening socket, and whichever worker
wakes first accepts what is waiting: a client that opens its keep-alive connections together
(a platform's connection pool, a load balancer) often gets all of them on one worker while the
others idle (32 connections split 32/0, 30/2 or 29/3 in five tries here). On Linux each worker
here binds its own socket with ``SO_REUSEPORT`` instead, and the kernel spreads connections over
the workers' sockets by their addresses (16/16, 15/17, 14/18, 11/21, 16/16 in the same tries;
docs/decisions.md). Elsewhere :func:`serve_in_workers` falls back to uvicorn's own supervisor.

The supervisor here is deliberately small: it starts the workers, starts a worker again when one
dies after it had started, stops everything when one fails at start-up (an app that cannot be
imported or built, or a broken configuration, fails the same way every time), and stops the
workers on SIGINT or SIGTERM.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any

# uvicorn's exit status for a worker that could not start (its lifespan failed)
STARTUP_FAILURE = 3
# how long a stopped worker may take to finish its requests before it is killed
GRACE_S = 30.0
POLL_S = 0.5


def reuse_port_supported() -> bool:
    """Whether the kernel spreads connections over ``SO_REUSEPORT`` sockets (Linux does;
    other systems accept the option but hand every connection to one socket)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _tcp_socket(host: str) -> socket.socket:
    return socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT`` (not yet listening)."""
    sock = _tcp_socket(host)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def check_port_free(host: str, port: int) -> None:
    """Raise ``OSError`` when something is bound to ``host:port``.

    A plain bind conflicts with any socket on the port, ``SO_REUSEPORT`` ones included, so a
    second server started by mistake on a port is refused instead of quietly taking a share of
    its connections.
    """
    with _tcp_socket(host) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def _worker(app: str, host: str, port: int, options: dict[str, Any]) -> None:
    """One worker process: its own listening socket, one uvicorn server on it."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, **options)
    try:
        sock = reuse_port_socket(host, port)
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
    sock.listen(config.backlog)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except BaseException:
        if server.started:
            raise
        # The app could not be imported or built (uvicorn exits 1 for an app it cannot find):
        # it would fail the same way in every new worker.
        traceback.print_exc()
        sys.exit(STARTUP_FAILURE)
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class Supervisor:
    """Keep ``workers`` worker processes serving ``app`` until stopped (see the module)."""

    def __init__(self, app: str, host: str, port: int, workers: int,
                 options: dict[str, Any], log=print) -> None:
        self.app, self.host, self.port, self.n = app, host, port, workers
        self.options = options
        self.log = log
        self.context = multiprocessing.get_context("spawn")
        self.processes: list[multiprocessing.process.BaseProcess] = []
        self.stopping = threading.Event()
        self.failed = False

    def _start(self) -> multiprocessing.process.BaseProcess:
        process = self.context.Process(target=_worker, name="recommender-worker",
                                       args=(self.app, self.host, self.port, self.options))
        process.start()
        return process

    def run(self) -> int:
        """Serve until SIGINT or SIGTERM; the exit status (1 when a worker could not start)."""
        # Holding a bound (never listening) socket keeps the port ours between restarts, and a
        # port already in use fails here, once, before any worker loads a model.
        try:
            check_port_free(self.host, self.port)
            reserved = reuse_port_socket(self.host, self.port)
        except OSError as exc:
            self.log(f"error: cannot listen on {self.host}:{self.port}: {exc.strerror}")
            return 1
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.processes = [self._start() for _ in range(self.n)]
            self.log(f"started {self.n} workers (pids "
                     f"{', '.join(str(p.pid) for p in self.processes)}), each with its own "
                     f"socket on {self.host}:{self.port}")
            while not self.stopping.wait(POLL_S):
                self._replace_dead()
            self._stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            reserved.close()
        return 1 if self.failed else 0

    def _on_signal(self, signum, frame) -> None:
        self.stopping.set()

    def _replace_dead(self) -> None:
        for i, process in enumerate(self.processes):
            if process.is_alive():
                continue
            if process.exitcode == STARTUP_FAILURE:
                self.log(f"worker {process.pid} could not start: stopping the server")
                self.failed = True
                self.stopping.set()
                return
            self.log(f"worker {process.pid} exited ({process.exitcode}): starting another")
            self.processes[i] = self._start()

    def _stop_all(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + GRACE_S
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


def serve_in_workers(app: str, host: str, port: int, workers: int, log=print,
                     **options: Any) -> int:
    """Serve ``app`` (an import string; ``factory=True`` and the rest go to ``uvicorn.Config``)
    in ``workers`` processes; returns the exit status."""
    import uvicorn

    if workers == 1 or not reuse_port_supported():
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return 0
    return Supervisor(app, host, port, workers, options, log).run()
