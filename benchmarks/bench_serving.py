"""Serving at district scale: in-process latency, and HTTP latency and throughput under load.

Targets: one resident's top-10 with business filters and explanations has p99 under 20 ms in
process; over HTTP with ``--workers`` uvicorn workers (default 2) and ``--concurrency`` clients
(default 32), the recommendations endpoint has p99 under 50 ms and reaches at least 0.25 of the
throughput of the same route answering a canned list (no ranking), measured in the same run (a
ratio, because these machines are shared and noisy). ``/healthz`` is measured too, for scale.
Each HTTP row also gives the server's CPU time per request (its processes' user and system time
over the round, from ``psutil``): on a shared machine requests per second follow the other
sessions' load, the CPU a request costs much less so.

Usage::

    .venv/bin/python benchmarks/bench_serving.py                       # 400k / 3k, generated
    .venv/bin/python benchmarks/bench_serving.py --residents 50000     # smaller district
    .venv/bin/python benchmarks/bench_serving.py --data DIR --artifacts ART [--db URL]

Missing pieces are made under ``--out`` (default ``var/bench_serving``) and reused on the next
run: the district (generated), the store (imported; SQLite unless ``--db``) and the artifact
(trained with the default hyper-parameters). The HTTP phase serves the app in a subprocess on
127.0.0.1 in ``--workers`` workers as ``recommender serve`` does (each with its own listening
socket), waits until every worker accepts connections, and drives it from this process
with ``--concurrency`` keep-alive connections of a raw-socket client (cheap enough that the
server, not the client, is the limit); ``/healthz``, ``/v1/model`` (a trivial
endpoint behind the key check) and the recommendations endpoint (a different resident per
request) alternate in rounds; the best round of each counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recommender.data.store import open_store  # noqa: E402
from recommender.serving.service import ModelHolder, RecommendationService  # noqa: E402

API_KEY = "bench-platform-key"
# `recommender serve` for any app factory (the canned-answer app too), without access logs
SERVE = ("import sys; from recommender.cli.workers import serve_in_workers; "
         "sys.exit(serve_in_workers(sys.argv[1], '127.0.0.1', int(sys.argv[2]), "
         "int(sys.argv[3]), factory=True, log_level='warning', "
         "access_log=False, timeout_worker_healthcheck=120))")


def _prepare(args) -> tuple[str, Path]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data) if args.data else out / f"district-{args.residents}-{args.courses}"
    if not any((data / f"participations.{ext}").exists() for ext in ("parquet", "csv")):
        from recommender.demo.generator import generate_district

        print(f"generating {args.residents} residents / {args.courses} courses into {data}")
        generate_district(data, residents=args.residents, courses=args.courses, seed=0,
                          fmt="parquet", progress=True)
    db = args.db or f"sqlite:///{(out / f'{data.name}.db').resolve()}"
    store = open_store(db)
    if store.count("participations") == 0:
        from recommender.data.ingest import import_folder

        print(f"importing {data} into {store}")
        import_folder(data, store, progress=True)
    store.dispose()
    artifacts = Path(args.artifacts) if args.artifacts else out / f"artifacts-{data.name}"
    if not (artifacts / "current").exists():
        from recommender.data.datasets import load_district
        from recommender.training.recipe import train_artifact

        print(f"training an artifact into {artifacts}")
        started = time.perf_counter()
        train_artifact(load_district(data), artifacts, seed=0)
        print(f"trained in {time.perf_counter() - started:.0f} s")
    return db, artifacts


def _in_process(db: str, artifacts: Path, n: int, rng) -> dict:
    store = open_store(db, create=False)
    holder = ModelHolder(artifacts, store)
    started = time.perf_counter()
    holder.reload()
    load_s = time.perf_counter() - started
    service = RecommendationService(store, holder)
    users = holder.engine.users.index.to_numpy()
    residents = rng.choice(users, n + 20, replace=False)
    for rid in residents[:20]:  # warm caches and lazily built structures
        service.for_resident(str(rid))
    times = []
    for rid in residents[20:]:
        t0 = time.perf_counter()
        out = service.for_resident(str(rid), k=10, explain=True)
        times.append(time.perf_counter() - t0)
        assert out["items"], rid
    cold = []
    for i in range(min(n, 200)):
        t0 = time.perf_counter()
        service.for_resident(f"R-unknown-{i}", k=10, explain=True)
        cold.append(time.perf_counter() - t0)
    # What folding one commitment event costs in seats: whether its resident holds seats, asked
    # of the store; and, for scale, one course's seats counted again.
    courses = rng.choice(holder.engine.items.index.to_numpy(), min(200, len(
        holder.engine.items)), replace=False)
    recount, holders = [], []
    for course, rid in zip(courses, residents):
        t0 = time.perf_counter()
        store.seats_taken([str(course)])
        recount.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        store.seat_holders([str(rid)])
        holders.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    store.seats_taken()
    all_seats_s = time.perf_counter() - t0
    store.dispose()
    ms = 1000 * np.array(times)
    recount_ms = 1000 * np.array(recount)
    return {"load_s": load_s, "n": len(times), "p50_ms": float(np.percentile(ms, 50)),
            "recount_p50_ms": float(np.percentile(recount_ms, 50)),
            "recount_p99_ms": float(np.percentile(recount_ms, 99)), "all_seats_s": all_seats_s,
            "fold_p50_ms": float(np.percentile(1000 * np.array(holders), 50)),
            "fold_p99_ms": float(np.percentile(1000 * np.array(holders), 99)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()),
            "cold_p50_ms": float(np.percentile(1000 * np.array(cold), 50)),
            "cold_p99_ms": float(np.percentile(1000 * np.array(cold), 99)),
            "residents": [str(r) for r in residents[20:]]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _get(reader, writer, path: str) -> tuple[int, bytes]:
    """One keep-alive HTTP/1.1 GET; returns (status, body)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nX-API-Key: {API_KEY}\r\n\r\n"
                 .encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _drive(port: int, paths: list[str], concurrency: int) -> tuple[float, np.ndarray]:
    """Send ``paths`` over ``concurrency`` keep-alive connections; (seconds, latencies ms).

    A raw-socket client, not httpx: at ~0.05 ms of client work per request it leaves the
    server as the bottleneck even for ``/healthz``, so the ratio measures the server (an httpx
    client tops out near 1,100 requests/s here, below what ``/healthz`` can serve).
    """
    queue = deque(paths)
    latencies: list[float] = []

    async def worker():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                path = queue.popleft()
                t0 = time.perf_counter()
                status, body = await _get(reader, writer, path)
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    raise RuntimeError(f"{path}: {status} {body[:200]!r}")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, 1000 * np.array(latencies)


def _server_cpu_seconds(server_pid: int) -> float:
    """User and system CPU seconds of the server and its workers so far."""
    import psutil

    server = psutil.Process(server_pid)
    return sum(sum(p.cpu_times()[:2]) for p in [server, *server.children(recursive=True)])


async def _http_rounds(port: int, endpoints: dict[str, list[str]], args,
                       server_pid: int) -> dict:
    best: dict[str, dict] = {}
    await _drive(port, ["/healthz"] * 200, args.concurrency)  # warm-up
    for _ in range(args.rounds):
        for name, paths in endpoints.items():
            cpu = _server_cpu_seconds(server_pid)
            seconds, ms = await _drive(port, paths, args.concurrency)
            # The server's CPU per request: what a request costs, whatever else shares the
            # machine (requests per second falls with the machine's load; this hardly moves).
            row = {"requests": len(paths), "rps": len(paths) / seconds,
                   "p50_ms": float(np.percentile(ms, 50)),
                   "p99_ms": float(np.percentile(ms, 99)),
                   "cpu_ms": 1000 * (_server_cpu_seconds(server_pid) - cpu) / len(paths)}
            if name not in best or row["rps"] > best[name]["rps"]:
                best[name] = row
    return best


def _lists_per_call(base: str) -> float:
    """Residents' lists ranked together per ranking call over the run, as one worker's
    ``/metrics`` counts them (the workers share the load alike)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{base}/metrics", timeout=10).text
    found = {s.name: s.value for family in text_string_to_metric_families(text)
             for s in family.samples if s.name.startswith("recommender_list_batch_size")}
    count = found.get("recommender_list_batch_size_count", 0.0)
    return found.get("recommender_list_batch_size_sum", 0.0) / count if count else float("nan")


def _recommendation_paths(residents: list[str], n: int) -> list[str]:
    return [f"/v1/residents/{residents[i % len(residents)]}/recommendations?k=10&explain=true"
            for i in range(n)]


def floor_app():
    """The real app whose service answers every resident with one fixed, real top-10.

    It measures what the recommendations route costs with no ranking at all (key check,
    parameter and response validation, the thread-pool hop for the store read, JSON): the
    ceiling of the throughput ratio for this route in this framework, whatever the model.

    The canned service replaces the real one in ``app.state`` once the lifespan has built it.
    A dependency override would not do: with any override set, FastAPI rebuilds each
    dependency's description on every request (~0.4 ms here), which the real app never pays.
    """
    from contextlib import asynccontextmanager

    from api.main import create_app
    from recommender.serving.batching import ListBatcher
    from recommender.serving.service import ResidentFacts

    app = create_app()
    answer: dict = {}

    class CannedService:
        def __init__(self, real):
            self.real = real
            # the route's queue, as the real service's, answering from the canned list
            self.lists = ListBatcher(self.for_residents)

        def __getattr__(self, name):  # readiness and the rest answer as the real service does
            return getattr(self.real, name)

        def resident_facts(self, resident_id: str) -> ResidentFacts:
            return ResidentFacts(frozenset())

        def for_residents(self, requests: list) -> list[dict]:
            if not answer:
                answer.update(self.real.for_residents(requests[:1])[0])
            return [{**answer, "resident_id": r.resident_id} for r in requests]

    real_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def canned_lifespan(app):
        async with real_lifespan(app):
            app.state.service = CannedService(app.state.service)
            yield

    app.router.lifespan_context = canned_lifespan
    return app


def _wait_for_workers(server: subprocess.Popen, port: int, workers: int, deadline: float) -> None:
    """Return once ``workers`` different processes have accepted a connection (a worker accepts
    only after its start-up, model load included)."""
    import psutil

    seen: set[int] = set()
    while len(seen) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(seen)} of {workers} workers became ready")
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
            sock.recv(4096)
            mine = sock.getsockname()[1]
            for child in psutil.Process(server.pid).children() or [psutil.Process(server.pid)]:
                if any(c.raddr and c.raddr.port == mine for c in child.net_connections("tcp")):
                    seen.add(child.pid)
        time.sleep(0.05)


def _http(db: str, artifacts: Path, endpoints: dict[str, list[str]], args,
          factory: str = "api.main:create_app", workers: int = 1,
          port: int | None = None) -> dict:
    """Start ``factory`` in ``workers`` uvicorn workers and measure ``endpoints`` in rounds."""
    port = port or _free_port()
    env = {**os.environ, "RECOMMENDER_DATABASE_URL": db,
           "RECOMMENDER_ARTIFACTS_DIR": str(artifacts.resolve()),
           "RECOMMENDER_API_KEYS": f"platform:{API_KEY}"}
    # served as `recommender serve` serves (recommender.cli.workers: a socket per worker)
    cmd = [sys.executable, "-c", SERVE, factory, str(port), str(workers)]
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "benchmarks"),
                                         env.get("PYTHONPATH", "")])
    server = subprocess.Popen(cmd, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 600
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {server.returncode}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not become ready in 600 s")
            time.sleep(0.5)
        _wait_for_workers(server, port, workers, deadline)
        rows = asyncio.run(_http_rounds(port, endpoints, args, server.pid))
        rows["lists per ranking call"] = _lists_per_call(base)
        return rows
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--residents", type=int, default=400_000)
    parser.add_argument("--courses", type=int, default=3_000)
    parser.add_argument("--data", help="A district folder (default: generate one under --out).")
    parser.add_argument("--artifacts", help="An artifacts folder with `current`.")
    parser.add_argument("--db", help="Store URL (default: an SQLite file under --out).")
    parser.add_argument("--out", default=str(ROOT / "var" / "bench_serving"))
    parser.add_argument("--requests", type=int, default=1000, help="In-process requests.")
    parser.add_argument("--http-requests", type=int, default=1000, help="Per endpoint, per round.")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-floor", dest="floor", action="store_false",
                        help="Skip the canned-answer run (the route's cost without ranking).")
    args = parser.parse_args(argv)

    db, artifacts = _prepare(args)
    rng = np.random.default_rng(args.seed)
    local = _in_process(db, artifacts, args.requests, rng)
    residents, n = local.pop("residents"), args.http_requests
    http = _http(db, artifacts, {"/healthz": ["/healthz"] * n,
                                 "/v1/model (key check)": ["/v1/model"] * n,
                                 "recommendations": _recommendation_paths(residents, n)}, args,
                 workers=args.workers)
    per_call = http.pop("lists per ranking call")
    ratio = http["recommendations"]["rps"] / http["/healthz"]["rps"]
    floor, canned_ratio = {}, None
    if args.floor:
        canned = _http(db, artifacts, {"/healthz": ["/healthz"] * n,
                                       "recommendations": _recommendation_paths(residents, n)},
                       args, factory="bench_serving:floor_app", workers=args.workers)
        canned.pop("lists per ranking call")
        floor = {"/healthz (canned-answer app)": canned["/healthz"],
                 "recommendations, canned answer": canned["recommendations"]}
        floor_ratio = canned["recommendations"]["rps"] / canned["/healthz"]["rps"]
        canned_ratio = http["recommendations"]["rps"] / canned["recommendations"]["rps"]

    print(f"\nServing benchmark ({args.residents if not args.data else args.data}; "
          f"artifact {artifacts.resolve().name if artifacts.exists() else artifacts}; "
          f"model load {local['load_s']:.1f} s)")
    print(f"{args.workers} worker(s), {args.concurrency} concurrent clients; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end")
    print(f"{'measure':<44}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>10}{'cpu ms/req':>12}")
    print(f"{'in-process top-10, known resident':<44}{local['p50_ms']:>10.2f}"
          f"{local['p99_ms']:>10.2f}{1000 / local['mean_ms']:>10.0f}")
    print(f"{'in-process top-10, unknown (cold start)':<44}{local['cold_p50_ms']:>10.2f}"
          f"{local['cold_p99_ms']:>10.2f}{'':>10}")
    print(f"{'seats held by one resident (a fold)':<44}{local['fold_p50_ms']:>10.2f}"
          f"{local['fold_p99_ms']:>10.2f}{'':>10}")
    print(f"{'seats of one course counted':<44}{local['recount_p50_ms']:>10.2f}"
          f"{local['recount_p99_ms']:>10.2f}{'':>10}")
    print(f"{'seats of every course counted (a load)':<44}{1000 * local['all_seats_s']:>10.0f}"
          f"{'':>10}{'':>10}")
    for name, row in {**http, **floor}.items():
        label = f"HTTP {name} (c={args.concurrency})"
        print(f"{label:<44}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}{row['rps']:>10.0f}"
              f"{row['cpu_ms']:>12.2f}")
    print(f"\nHTTP recommendations p99: {http['recommendations']['p99_ms']:.1f} ms  "
          f"(target < 50 ms); lists ranked together per ranking call: {per_call:.1f}")
    if floor:
        print(f"throughput ratio recommendations / the same route with a canned list: "
              f"{canned_ratio:.2f}  (target >= 0.25)")
    print(f"throughput ratio recommendations / healthz: {ratio:.2f}")
    if floor:
        print(f"the same route answering from a canned list (no ranking), / healthz: "
              f"{floor_ratio:.2f}  (the framework's ceiling for that ratio)")
    print(f"in-process p99: {local['p99_ms']:.1f} ms  (target < 20 ms)")
    result = {"args": vars(args), "in_process": local, "http": {**http, **floor},
              "ratio": ratio, "ratio_to_canned": canned_ratio, "lists_per_call": per_call}
    (Path(args.out) / "results.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
