"""One resident's top-10 in process: the service's list (filters, diversification, reasons; with
and without the store reads of the resident's facts), the engine's list without filters and the
model's bare ranking of the same residents, p50 / p99 per resident; then the service's lists
one by one and ranked together in batches (``--batch``), CPU time per list.

Usage::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_rank.py \
        --artifacts /work/main/var/district-100k/artifacts --db sqlite:///var/store.db
    ... --profile 20        # also print cProfile's top 20 functions of the service's loop

The store is only read, but SQLite takes locks on it: point ``--db`` at a copy when another
process uses the original. Every resident is timed ``--repeat`` times (the best of them
counts: these machines are shared); the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recommender.data.store import open_store  # noqa: E402
from recommender.serving.service import (  # noqa: E402
    ListRequest,
    ModelHolder,
    RecommendationService,
)


def _best_times(call, residents, repeat: int) -> np.ndarray:
    """Milliseconds per resident, the best of ``repeat`` rounds over all of them."""
    best = np.full(len(residents), np.inf)
    for _ in range(repeat):
        for k, rid in enumerate(residents):
            t0 = time.perf_counter()
            call(rid)
            best[k] = min(best[k], time.perf_counter() - t0)
    return 1000 * best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--residents", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=16,
                        help="Lists ranked together in the batched row.")
    args = parser.parse_args(argv)

    store = open_store(args.db, create=False)
    holder = ModelHolder(Path(args.artifacts), store)
    holder.reload()
    service = RecommendationService(store, holder)
    engine = holder.engine
    users = engine.users.index.to_numpy()
    rng = np.random.default_rng(args.seed)
    residents = [str(r) for r in rng.choice(users, args.residents, replace=False)]
    facts = {rid: service.resident_facts(rid) for rid in residents}
    contexts = {rid: engine.context_for(rid) for rid in residents}
    for rid in residents[:20]:  # warm caches and lazily built structures
        service.for_resident(rid, facts=facts[rid])

    rows = {
        # as bench_serving.py's in-process row: the store reads of the resident's facts too
        "service.for_resident (store reads)": lambda rid: service.for_resident(
            rid, k=10, explain=True),
        # the service without its store reads: what ranking one resident costs
        "service.for_resident (facts given)": lambda rid: service.for_resident(
            rid, k=10, explain=True, facts=facts[rid]),
        "engine.recommend (no filters)": lambda rid: engine.recommend(contexts[rid], n=10),
        "model.rank (no reasons)": lambda rid: engine.rank_pool(contexts[rid], 10),
    }
    print(f"{len(residents)} residents x best of {args.repeat}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'what':40s} {'p50 ms':>8s} {'p99 ms':>8s} {'mean ms':>8s}")
    for name, call in rows.items():
        ms = _best_times(call, residents, args.repeat)
        print(f"{name:40s} {np.percentile(ms, 50):8.3f} {np.percentile(ms, 99):8.3f} "
              f"{ms.mean():8.3f}")
    # Lists ranked together, as the server's queue ranks those asked meanwhile: the mean CPU
    # time per list, one by one and in batches of --batch (same residents, same run).
    requests = [ListRequest(rid, 10, None, True, facts[rid]) for rid in residents]
    for size in (1, args.batch):
        best = np.inf
        for _ in range(args.repeat):
            t0 = time.process_time()
            for start in range(0, len(requests), size):
                service.for_residents(requests[start:start + size])
            best = min(best, time.process_time() - t0)
        print(f"{f'service.for_residents, {size} at a time':40s} {'':>8s} {'':>8s} "
              f"{1000 * best / len(requests):8.3f}  (CPU ms per list)")
    print(f"load average after {os.getloadavg()[0]:.2f}")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for rid in residents:
            service.for_resident(rid, k=10, explain=True, facts=facts[rid])
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
    store.dispose()


if __name__ == "__main__":
    main()
