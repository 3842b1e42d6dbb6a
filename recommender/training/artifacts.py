"""Versioned model artifacts: write, verify, load, and point ``current`` at one atomically.

An artifact is a folder ``ARTIFACTS_DIR/<version>/`` holding ``manifest.json`` and the files it
lists with their sha256. Arrays are ``.npz`` loaded with ``allow_pickle=False``; joblib files
(fitted scikit-learn parts) are opened only after their checksum matched, because unpickling is
code execution. ``ARTIFACTS_DIR/current`` is a symlink swapped with ``os.replace`` so a reader
sees either the old or the new artifact, never a half-written one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

MANIFEST = "manifest.json"
CURRENT = "current"
FORMAT_VERSION = 1
_LIBRARIES = ("numpy", "scipy", "pandas", "scikit-learn", "implicit", "joblib")


class ArtifactError(RuntimeError):
    """An artifact that is missing, outside the artifacts directory, corrupt or mismatched."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - core deps are installed
            versions[name] = "missing"
    return versions


def new_version_dir(artifacts_dir: Path) -> Path:
    """A fresh, empty, uniquely named version folder inside ``artifacts_dir``."""
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    for n in range(1000):
        candidate = artifacts_dir / (f"v{stamp}" + (f"-{n}" if n else ""))
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise ArtifactError(f"could not create a new version folder in {artifacts_dir}")


def write_manifest(version_dir: Path, **fields) -> dict:
    """Checksum every file in ``version_dir`` and write ``manifest.json`` last.

    The manifest is written to a temporary name and renamed, so a folder without a complete
    manifest is never taken for an artifact.
    """
    files = {
        str(p.relative_to(version_dir)): sha256_file(p)
        for p in sorted(version_dir.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    manifest = {
        "format": FORMAT_VERSION,
        "version": version_dir.name,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "libraries": library_versions(),
        **fields,
        "files": files,
    }
    tmp = version_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str), "utf-8")
    os.replace(tmp, version_dir / MANIFEST)
    return manifest


def verify(version_dir: Path) -> dict:
    """Read the manifest and check every listed file's sha256; return the manifest.

    Raises
    ------
    ArtifactError
        Naming the file that is missing or whose checksum differs.
    """
    manifest_path = version_dir / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"{version_dir}: no {MANIFEST}; not a complete artifact")
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{manifest_path}: unreadable manifest ({exc})") from exc
    if manifest.get("format") != FORMAT_VERSION:
        raise ArtifactError(
            f"{manifest_path}: format {manifest.get('format')!r}, expected {FORMAT_VERSION}"
        )
    for name, expected in manifest.get("files", {}).items():
        path = version_dir / name
        if not path.is_file():
            raise ArtifactError(f"{version_dir}: file {name} listed in the manifest is missing")
        if sha256_file(path) != expected:
            raise ArtifactError(f"{version_dir}: checksum mismatch for {name}; refusing to load")
    return manifest


def resolve(artifacts_dir: Path, version: str = CURRENT) -> Path:
    """The real folder of ``version`` (default ``current``), which must lie in artifacts_dir.

    Following a symlink out of the configured directory is refused: artifacts are loaded only
    from there.
    """
    root = artifacts_dir.resolve()
    target = (artifacts_dir / version).resolve()
    if not target.is_dir():
        raise ArtifactError(f"no artifact {version!r} in {artifacts_dir} (train one first)")
    if target.parent != root:
        raise ArtifactError(f"artifact {version!r} resolves outside {artifacts_dir}: {target}")
    return target


def promote(artifacts_dir: Path, version_dir: Path) -> None:
    """Point ``artifacts_dir/current`` at ``version_dir`` atomically (after verifying it)."""
    verify(version_dir)
    if version_dir.resolve().parent != artifacts_dir.resolve():
        raise ArtifactError(f"{version_dir} is not inside {artifacts_dir}")
    tmp = artifacts_dir / f".{CURRENT}.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(version_dir.name)
    os.replace(tmp, artifacts_dir / CURRENT)


def list_versions(artifacts_dir: Path) -> list[dict]:
    """Every complete artifact in ``artifacts_dir``, oldest first, with whether it is current."""
    current = (artifacts_dir / CURRENT).resolve() if (artifacts_dir / CURRENT).exists() else None
    out = []
    for child in sorted(p for p in artifacts_dir.iterdir() if p.is_dir() and not p.is_symlink()):
        manifest_path = child / MANIFEST
        if manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text("utf-8"))
            out.append({"version": child.name, "created": manifest.get("created"),
                        "current": child.resolve() == current,
                        "metrics": manifest.get("validation_metrics", {})})
    return out


@dataclass
class ArtifactWriter:
    """Collects a training run's files in a fresh version folder, then seals it.

    Usage: ``w = ArtifactWriter.create(dir)``; write files into ``w.path``; ``w.seal(...)``;
    on failure ``w.discard()`` removes the partial folder.
    """

    artifacts_dir: Path
    path: Path

    @classmethod
    def create(cls, artifacts_dir: Path) -> ArtifactWriter:
        return cls(artifacts_dir, new_version_dir(artifacts_dir))

    def seal(self, promote_to_current: bool = True, **manifest_fields) -> dict:
        manifest = write_manifest(self.path, **manifest_fields)
        if promote_to_current:
            promote(self.artifacts_dir, self.path)
        return manifest

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
