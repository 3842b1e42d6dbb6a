"""The model registry: the versions in an artifacts folder, which one is current, and who moved it.

Every training run adds a version folder (:class:`recommender.training.artifacts.ArtifactWriter`)
and never overwrites one. ``current`` is a symlink to one version; :func:`promote` and
:func:`rollback` move it atomically (``os.replace`` of a fresh symlink) and append one line to
``history.jsonl`` in the artifacts folder: who (the OS user, or a name given), when, from which
version, to which, and why (``train``, ``promote``, ``rollback``). A rollback undoes the latest
move not already undone, so rolling back twice after two promotions returns to the first
version. Moves are serialised by an exclusive lock on a file in the folder, so two commands
cannot interleave their link swap and history line.

This module reads manifests only; lists ranked by two versions are compared in
:mod:`recommender.serving.overlap`, which loads them through the engine.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import getpass
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recommender.training.artifacts import (
    CURRENT,
    ArtifactError,
    is_version_name,
    read_manifest,
    verify,
)
from recommender.training.artifacts import resolve as resolve_folder

HISTORY = "history.jsonl"
_LOCK = ".registry.lock"
KEY_METRICS = ("ndcg@10", "recall@10", "precision@10", "map@10", "coverage")


class RegistryError(ArtifactError):
    """An unknown version, nothing to roll back to, or a history that cannot be read."""


# -- reading ----------------------------------------------------------------------------------
def current_version(artifacts_dir: Path) -> str | None:
    """The version ``current`` points at, or None when there is none yet."""
    link = Path(artifacts_dir) / CURRENT
    if not link.is_symlink() and not link.exists():
        return None
    return resolve_folder(Path(artifacts_dir)).name


def list_versions(artifacts_dir: Path) -> list[dict]:
    """Every version in ``artifacts_dir``, oldest first.

    Each entry: ``version``, ``created``, ``current`` (bool), ``data`` (name, sizes, hash),
    ``seed``, ``metrics`` (the manifest's validation metrics) and ``error`` (None, or why the
    folder's manifest cannot be read: such a folder is listed, not hidden). Temporary folders of
    runs in progress are not versions and are left out.
    """
    artifacts_dir = Path(artifacts_dir)
    if not artifacts_dir.is_dir():
        return []
    current = current_version(artifacts_dir)
    out = []
    for child in sorted(artifacts_dir.iterdir(), key=lambda p: _order(p.name)):
        if not is_version_name(child.name) or child.is_symlink() or not child.is_dir():
            continue
        entry = {"version": child.name, "created": None, "current": child.name == current,
                 "data": {}, "seed": None, "metrics": {}, "error": None}
        try:
            manifest = read_manifest(child)
        except ArtifactError as exc:
            entry["error"] = str(exc)
        else:
            entry.update(created=manifest.get("created"), data=manifest.get("data", {}),
                         seed=manifest.get("seed", manifest.get("params", {}).get("seed")),
                         metrics=manifest.get("validation_metrics", {}))
        out.append(entry)
    return out


def _order(name: str) -> tuple[str, int]:
    # Names are "v" + UTC time, with "-1", "-2"... for runs sealed within one second.
    stem, _, suffix = name.rpartition("-")
    return (stem, int(suffix)) if stem and suffix.isdigit() else (name, 0)


def resolve(artifacts_dir: Path, version: str = CURRENT) -> Path:
    """The folder of ``version`` (a version name or ``current``), which must be a complete
    version inside ``artifacts_dir``.

    Raises
    ------
    RegistryError
        Naming the unknown version and the versions there are.
    """
    artifacts_dir = Path(artifacts_dir)
    try:
        folder = resolve_folder(artifacts_dir, version)
        read_manifest(folder)
    except ArtifactError as exc:
        known = [v["version"] for v in list_versions(artifacts_dir) if v["error"] is None]
        if version == CURRENT and not (artifacts_dir / CURRENT).is_symlink():
            raise RegistryError(f"version: no current version in {artifacts_dir} "
                                "(train one, or promote one of: "
                                f"{', '.join(known) or 'none'})") from exc
        raise RegistryError(f"version: unknown version {version!r} in {artifacts_dir} "
                            f"(known: {', '.join(known) or 'none'})") from exc
    return folder


def load_manifest(artifacts_dir: Path, version: str = CURRENT, check: bool = False) -> dict:
    """The manifest of ``version`` (or ``current``); ``check`` also verifies every checksum."""
    folder = resolve(artifacts_dir, version)
    return verify(folder) if check else read_manifest(folder)


def history(artifacts_dir: Path) -> list[dict]:
    """Every move of ``current``, oldest first: ``at``, ``by``, ``action``, ``from``, ``to``."""
    path = Path(artifacts_dir) / HISTORY
    if not path.is_file():
        return []
    entries = []
    for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{path} line {n}: unreadable ({exc.msg})") from exc
        if not isinstance(entry, dict) or "to" not in entry:
            raise RegistryError(f"{path} line {n}: not a move (no 'to')")
        entries.append(entry)
    return entries


def last_move(artifacts_dir: Path) -> dict | None:
    """The latest move of ``current`` recorded in the history, or None."""
    entries = history(artifacts_dir)
    return entries[-1] if entries else None


def compare_manifests(first: dict, second: dict) -> dict:
    """Two manifests side by side: every figure as a pair ``(first's, second's)``.

    Returns ``{"versions", "served_by", "overall", "baseline", "by_band", "data", "code",
    "seed", "params"}``: the served model's validation metrics overall (``overall``, with the
    held-out ``users``) and per age band (``by_band``: users and every metric; a band only one
    of them has gets None on the other side), popularity-by-band's on the same users
    (``baseline``), the data summaries, the code versions and seeds, and only the parameters
    that differ. A figure a manifest does not have (an older artifact) is None.
    """
    ma, mb = first.get("validation_metrics") or {}, second.get("validation_metrics") or {}

    def pair(get):
        return (get(first, ma), get(second, mb))

    overall = {"users": pair(lambda _m, v: v.get("users"))}
    overall.update({k: pair(lambda _m, v, k=k: v.get("hybrid", {}).get(k)) for k in KEY_METRICS})
    baseline = {k: pair(lambda _m, v, k=k: v.get("popularity_by_band", {}).get(k))
                for k in KEY_METRICS}
    bands_a, bands_b = ma.get("by_band") or {}, mb.get("by_band") or {}
    by_band = {}
    for band in [*bands_a, *(b for b in bands_b if b not in bands_a)]:
        fa, fb = bands_a.get(band, {}), bands_b.get(band, {})
        by_band[band] = {"users": (fa.get("users"), fb.get("users")),
                         **{k: (fa.get("hybrid", {}).get(k), fb.get("hybrid", {}).get(k))
                            for k in KEY_METRICS}}
    data_a, data_b = first.get("data") or {}, second.get("data") or {}
    pa, pb = first.get("params") or {}, second.get("params") or {}
    return {
        "versions": (first.get("version"), second.get("version")),
        "served_by": pair(lambda _m, v: v.get("served_by")),
        "overall": overall, "baseline": baseline, "by_band": by_band,
        "data": {k: (data_a.get(k), data_b.get(k))
                 for k in ("name", "users", "items", "interactions", "cutoff", "sha256")},
        "code": pair(lambda m, _v: (m.get("code") or {}).get("git_commit")
                     or (m.get("code") or {}).get("package")),
        "seed": pair(lambda m, _v: m.get("seed", (m.get("params") or {}).get("seed"))),
        "params": {k: (pa.get(k), pb.get(k)) for k in sorted({*pa, *pb}, key=str)
                   if pa.get(k) != pb.get(k)},
    }


# -- moving current ---------------------------------------------------------------------------
def promote(artifacts_dir: Path, version: str, by: str | None = None,
            action: str = "promote") -> dict:
    """Point ``current`` at ``version`` (after verifying its checksums) and record the move.

    Returns the history entry. Raises :class:`RegistryError` for an unknown version or one that
    is already current, :class:`ArtifactError` for a corrupt one.
    """
    artifacts_dir = Path(artifacts_dir)
    with _locked(artifacts_dir):
        folder = resolve(artifacts_dir, version)
        if folder.name == current_version(artifacts_dir):
            raise RegistryError(f"version: {folder.name} is already current")
        verify(folder)
        return _move(artifacts_dir, folder.name, by, action)


def rollback_target(artifacts_dir: Path) -> str:
    """The version :func:`rollback` would make current.

    The history is replayed as a stack: a promotion (or training) pushes the version it moved
    away from, a rollback pops one. Raises :class:`RegistryError` when the stack is empty, or
    when ``current`` was moved outside the registry (it differs from the last recorded move).
    """
    artifacts_dir = Path(artifacts_dir)
    entries = history(artifacts_dir)
    if not entries:
        raise RegistryError(f"rollback: nothing to roll back to: no move of current is "
                            f"recorded in {artifacts_dir / HISTORY}")
    current = current_version(artifacts_dir)
    if entries[-1]["to"] != current:
        raise RegistryError(f"rollback: current is {current} but the last recorded move was to "
                            f"{entries[-1]['to']} (moved outside the registry); promote a "
                            "version instead")
    stack: list[str | None] = []
    for entry in entries:
        if entry.get("action") == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(entry.get("from"))
    if not stack or stack[-1] is None:
        raise RegistryError(f"rollback: nothing to roll back to: {current} was the first "
                            "version made current")
    return stack[-1]


def rollback(artifacts_dir: Path, by: str | None = None) -> dict:
    """Point ``current`` back at the version before the latest move not already undone (see
    :func:`rollback_target`), record it, and return the history entry."""
    artifacts_dir = Path(artifacts_dir)
    with _locked(artifacts_dir):
        target = rollback_target(artifacts_dir)
        try:
            folder = resolve(artifacts_dir, target)
        except RegistryError as exc:
            raise RegistryError(f"rollback: the previous version {target} is gone "
                                f"({exc})") from exc
        verify(folder)
        return _move(artifacts_dir, target, by, "rollback")


def operator_name(by: str | None = None) -> str:
    """``by`` if given, else the OS user running the command."""
    if by:
        return by
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # a container user without a passwd entry or $USER
        return f"uid {os.getuid()}"


def _move(artifacts_dir: Path, version: str, by: str | None, action: str) -> dict:
    """Swap the link, then append the history line; a failed append puts the link back."""
    previous = current_version(artifacts_dir)
    entry = {"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
             "by": operator_name(by), "action": action, "from": previous, "to": version}
    _point_current(artifacts_dir, version)
    try:
        _append_line(artifacts_dir / HISTORY, json.dumps(entry, ensure_ascii=False))
    except BaseException:
        if previous is not None:
            _point_current(artifacts_dir, previous)
        else:
            (artifacts_dir / CURRENT).unlink(missing_ok=True)
        raise
    return entry


def _point_current(artifacts_dir: Path, version: str) -> None:
    # A reader sees the old link or the new one, never none: the new link is made under a
    # temporary name and renamed over ``current``.
    tmp = artifacts_dir / f".{CURRENT}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(version)
    os.replace(tmp, artifacts_dir / CURRENT)


def _append_line(path: Path, line: str) -> None:
    """Append ``line`` atomically: the whole file is rewritten under a temporary name and
    renamed, so a crash leaves the old history or the new one, never half a line."""
    old = path.read_bytes() if path.is_file() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(old + line.encode("utf-8") + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@contextmanager
def _locked(artifacts_dir: Path) -> Iterator[None]:
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    with open(artifacts_dir / _LOCK, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


__all__ = ["HISTORY", "KEY_METRICS", "RegistryError", "compare_manifests", "current_version",
           "history",
           "last_move", "list_versions", "load_manifest", "operator_name", "promote",
           "resolve", "rollback", "rollback_target"]
