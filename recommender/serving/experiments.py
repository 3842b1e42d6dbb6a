"""Online A/B tests in serving: which model version a resident gets while an experiment runs.

An experiment (a row of the store's ``experiments`` table) serves ``version_b`` to a stable share
of residents and ``version_a`` to the rest. A resident's variant is a hash of the experiment id
and their id (:func:`assign`), so it is the same on every request and in every worker, differs
between experiments, and needs no stored assignment. A household list is assigned by the
household id (every member sees the same variant); a profile list (nobody registered, so no
outcome can be attributed) gets ``version_a``, the control.

:class:`ExperimentBook` reads the running experiment from the store at most once per ``ttl``
seconds per process, so every worker follows ``ab start`` and ``ab stop`` within about a second
and a restart picks the experiment up again. It holds a :class:`ModelHolder` per version (the
service's own holder when a version is the one it serves), loaded in a background thread so no
request waits for a model to load; until both are loaded, lists come from the service's model
and are logged without a variant.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from recommender.data.store import ExperimentConflict
from recommender.serving.errors import InvalidInput, NotFound, ServiceError
from recommender.serving.holder import ModelHolder, Snapshot

if TYPE_CHECKING:
    from recommender.data.store import Store
    from recommender.serving.engine import Engine

log = logging.getLogger(__name__)
VARIANTS = ("A", "B")
# A version that failed to load is tried again after this many seconds.
RETRY_SECONDS = 30.0


class ExperimentRunning(ServiceError):
    status, code = 409, "experiment_running"


def assign(experiment_id: int, unit_id: str, share: float) -> str:
    """``"B"`` for a stable ``share`` of units, ``"A"`` for the rest.

    The first 64 bits of sha256(``"<experiment_id>:<unit_id>"``) as a fraction of 2**64: uniform,
    the same in every process and run, and independent between experiments.
    """
    digest = hashlib.sha256(f"{experiment_id}:{unit_id}".encode()).digest()
    return "B" if int.from_bytes(digest[:8], "big") / 2.0**64 < share else "A"


def resolve_version(artifacts_dir: Path, version: str) -> Path:
    """The folder of model ``version`` in the registry (a complete version with its manifest).

    Raises
    ------
    NotFound
        Naming the version, and the versions there are, when there is no such artifact.
    """
    from recommender.training import registry

    try:
        return registry.resolve(Path(artifacts_dir), version)
    except registry.RegistryError as exc:
        raise NotFound("version", str(exc).removeprefix("version: ")) from exc


def _load_version(version: str, artifacts_dir: Path) -> Engine:
    from recommender.serving.engine import Engine

    path = resolve_version(artifacts_dir, version)
    return Engine.load(path.parent, path.name)


@dataclass(frozen=True)
class Arm:
    """What one list is served from: the snapshot, and the experiment and variant (None when
    no experiment is live in this process)."""

    snapshot: Snapshot
    experiment_id: int | None = None
    variant: str | None = None


@dataclass
class _Live:
    """The experiment this process serves, with a holder per variant."""

    experiment: dict
    holders: dict[str, ModelHolder]


class ExperimentBook:
    """The running experiment of a store and the models of its variants.

    Parameters
    ----------
    store : Store
        Where experiments are kept.
    holder : ModelHolder
        The service's model; used for a variant whose version it serves.
    ttl : float
        Seconds a read of the running experiment is reused.
    clock : callable
        Monotonic seconds (tests pass their own).
    """

    def __init__(self, store: Store, holder: ModelHolder, ttl: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.holder = holder
        self.ttl = ttl
        self.clock = clock
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._failed_at: float | None = None
        self._running: dict | None = None
        self._live: _Live | None = None
        self._loader: threading.Thread | None = None

    # -- state ----------------------------------------------------------------------------
    def running(self) -> dict | None:
        """The running experiment, read again when the cached read is older than ``ttl``;
        starts loading its models when this process does not serve it yet."""
        with self._lock:
            now = self.clock()
            if self._read_at is None or now - self._read_at >= self.ttl:
                self._running = self.store.running_experiment()
                self._read_at = now
            running = self._running
            if running is None:
                self._live = None  # stopped: the variants' models are let go
            elif not self._serves(running) and self._may_load(now):
                self._loader = threading.Thread(target=self._load, args=(running,),
                                                name="experiment-loader", daemon=True)
                self._loader.start()
        return running

    def refresh(self, wait: bool = True) -> dict | None:
        """Read the store now (this process just started or stopped an experiment); with
        ``wait``, return once the running experiment's models are loaded (or failed to)."""
        with self._lock:
            self._read_at = None
            self._failed_at = None
        running = self.running()
        loader = self._loader
        if wait and loader is not None:
            loader.join()
        return running

    def _serves(self, experiment: dict) -> bool:
        live = self._live
        return (live is not None
                and live.experiment["experiment_id"] == experiment["experiment_id"]
                and all(live.holders[v].version == experiment[f"version_{v.lower()}"]
                        for v in VARIANTS))

    def _may_load(self, now: float) -> bool:
        if self._loader is not None and self._loader.is_alive():
            return False
        return self._failed_at is None or now - self._failed_at >= RETRY_SECONDS

    def _load(self, experiment: dict) -> None:
        """Load a holder per variant (off the request path), then make the experiment live."""
        held = {h.version: h for h in ([self._live.holders[v] for v in VARIANTS]
                                       if self._live else [])}
        held[self.holder.version] = self.holder
        try:
            holders = {}
            for variant in VARIANTS:
                version = experiment[f"version_{variant.lower()}"]
                holder = held.get(version)
                if holder is None:
                    holder = ModelHolder(self.holder.artifacts_dir, self.holder.store,
                                         loader=partial(_load_version, version))
                    holder.reload()
                holders[variant] = held[version] = holder
        except Exception as exc:  # an unloadable version: serve the current model, say why
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._failed_at = self.clock()
            log.error("experiment %s not served: %s", experiment["experiment_id"],
                      self.last_error)
            return
        with self._lock:
            if (self._running or {}).get("experiment_id") == experiment["experiment_id"]:
                self._live = _Live(experiment, holders)
                self.last_error = None
                log.info("experiment %s live: A=%s, B=%s (share %.3f)",
                         experiment["experiment_id"], experiment["version_a"],
                         experiment["version_b"], experiment["share"])

    # -- serving --------------------------------------------------------------------------
    def arm(self, unit_id: str | None) -> Arm:
        """The snapshot a list for ``unit_id`` (a resident or household id; None: a profile,
        which gets the control) is served from, with its experiment and variant."""
        running = self.running()
        live = self._live
        if running is None or live is None or not self._serves(running):
            return Arm(self.holder.snapshot())
        share = float(running["share"])
        variant = "A" if unit_id is None else assign(running["experiment_id"], unit_id, share)
        return Arm(live.holders[variant].snapshot(), running["experiment_id"], variant)

    def other_holders(self) -> list[ModelHolder]:
        """The variants' holders other than the service's own (new events are folded into
        them too)."""
        live = self._live
        if live is None:
            return []
        return [h for h in dict.fromkeys(live.holders.values()) if h is not self.holder]

    # -- administration -------------------------------------------------------------------
    def start(self, version_a: str, version_b: str, share: float, started_by: str,
              note: str | None = None) -> dict:
        """Check both versions exist, record the experiment, and load its models here.

        Raises
        ------
        NotFound
            A version without an artifact.
        InvalidInput
            A share outside (0, 1) or the same version twice.
        ExperimentRunning
            Another experiment runs.
        """
        # ``current`` is kept as the version it names now: the experiment's versions must not
        # move with a promote, and the variants' models are matched by their version names.
        names = {}
        for field, version in (("version_a", version_a), ("version_b", version_b)):
            try:
                names[field] = resolve_version(self.holder.artifacts_dir, version).name
            except NotFound as exc:
                raise NotFound(field, exc.reason) from exc
        version_a, version_b = names["version_a"], names["version_b"]
        try:
            row = self.store.start_experiment(version_a=version_a, version_b=version_b,
                                              share=share, started_by=started_by, note=note)
        except ValueError as exc:
            field, _, reason = str(exc).partition(": ")
            raise InvalidInput(field, reason) from exc
        except ExperimentConflict as exc:
            raise ExperimentRunning("experiment", str(exc).partition(": ")[2]) from exc
        self.refresh(wait=True)
        return row

    def stop(self, stopped_by: str) -> dict:
        """Stop the running experiment. Raises :class:`NotFound` when none runs."""
        row = self.store.stop_experiment(by=stopped_by)
        if row is None:
            raise NotFound("experiment", "no experiment is running")
        self.refresh(wait=False)
        return row

    def status(self) -> dict:
        """The running experiment (or None), whether this process serves it, and the last
        experiment when none runs."""
        running = self.refresh(wait=False)
        return {"running": running, "live": running is not None and self._serves(running),
                "error": self.last_error,
                "latest": running or self.store.experiment()}

    def report(self, days: float = 7.0, experiment_id: int | None = None) -> dict:
        """The A/B report (:func:`recommender.evaluation.abtest.experiment_report`).

        Raises :class:`NotFound` for an unknown experiment, :class:`InvalidInput` for ``days``.
        """
        from recommender.evaluation.abtest import experiment_report

        try:
            return experiment_report(self.store, experiment_id, days)
        except LookupError as exc:
            raise NotFound(*str(exc).split(": ", 1)) from exc
        except ValueError as exc:
            raise InvalidInput(*str(exc).split(": ", 1)) from exc


__all__ = ["VARIANTS", "Arm", "ExperimentBook", "ExperimentRunning", "assign",
           "resolve_version"]
