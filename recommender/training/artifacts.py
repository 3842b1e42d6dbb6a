"""Versioned model artifacts: write one atomically, verify it, find it.

An artifact is a folder ``ARTIFACTS_DIR/<version>/`` holding ``manifest.json`` and the files it
lists with their sha256. Arrays are ``.npz`` loaded with ``allow_pickle=False``; joblib files
(fitted scikit-learn parts) are opened only after their checksum matched, because unpickling is
code execution. A training run writes into a hidden temporary folder and renames it to its
version name only once the manifest is written, so a run that fails or is interrupted leaves no
version behind. ``ARTIFACTS_DIR/current`` is a symlink; moving it (and the history of who moved
it) is :mod:`recommender.training.registry`'s job.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

MANIFEST = "manifest.json"
CURRENT = "current"
# Raised whenever a saved model's layout changes (2: the recent-popularity component and its
# signal columns; 3: the components' scores placed within each user's candidates, which the
# trees of an older model were not trained on), so an older artifact is refused with a
# "retrain" message, not a crash or a quietly worse ranking.
FORMAT_VERSION = 3
DISTRIBUTION = "community-course-recommender"
# What a model's numbers depend on beyond the code: recorded so a run can be repeated.
_LIBRARIES = ("numpy", "scipy", "pandas", "pyarrow", "scikit-learn", "implicit", "joblib",
              "threadpoolctl")
_SOURCE_ROOT = Path(__file__).resolve().parents[2]
TEMP_PREFIX = ".tmp-"


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


def code_version(root: Path = _SOURCE_ROOT) -> dict:
    """The code a model was trained with: the git commit of ``root`` (and whether tracked files
    differed from it) when it is a git checkout, and always the package version."""
    try:
        package = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # running from a source tree that was not installed
        package = None
    out: dict = {"package": package, "git_commit": None, "dirty": None}
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                 "--untracked-files=no"], check=True, capture_output=True,
                                text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):  # no git, or not a checkout: package only
        return out
    return {**out, "git_commit": commit, "dirty": bool(status.strip())}


def read_manifest(version_dir: Path) -> dict:
    """The manifest of ``version_dir``, parsed and of this format (checksums not checked).

    Raises
    ------
    ArtifactError
        When the folder has no manifest, or one that cannot be read or is of another format.
    """
    manifest_path = version_dir / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"{version_dir}: no {MANIFEST}; not a complete artifact")
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{manifest_path}: unreadable manifest ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        found = manifest.get("format") if isinstance(manifest, dict) else manifest
        raise ArtifactError(f"{manifest_path}: format {found!r}, expected {FORMAT_VERSION} "
                            "(an artifact of an older release: train the model again)")
    return manifest


def verify(version_dir: Path) -> dict:
    """Read the manifest and check every listed file's sha256; return the manifest.

    Raises
    ------
    ArtifactError
        Naming the file that is missing or whose checksum differs.
    """
    manifest = read_manifest(version_dir)
    for name, expected in manifest.get("files", {}).items():
        path = version_dir / name
        if not path.is_file():
            raise ArtifactError(f"{version_dir}: file {name} listed in the manifest is missing")
        if sha256_file(path) != expected:
            raise ArtifactError(f"{version_dir}: checksum mismatch for {name}; refusing to load")
    return manifest


def is_version_name(name: str) -> bool:
    """Whether a folder name in the artifacts directory can be a version (not ``current``, not
    a hidden temporary folder of a run in progress)."""
    return bool(name) and name != CURRENT and not name.startswith(".")


def resolve(artifacts_dir: Path, version: str = CURRENT) -> Path:
    """The real folder of ``version`` (default ``current``), which must lie in artifacts_dir.

    Following a symlink out of the configured directory is refused: artifacts are loaded only
    from there.
    """
    if version != CURRENT and (not is_version_name(version) or "/" in version):
        raise ArtifactError(f"{version!r} is not a version name")
    root = artifacts_dir.resolve()
    target = (artifacts_dir / version).resolve()
    if not target.is_dir():
        raise ArtifactError(f"no artifact {version!r} in {artifacts_dir} (train one first)")
    if target.parent != root:
        raise ArtifactError(f"artifact {version!r} resolves outside {artifacts_dir}: {target}")
    return target


def _checksums(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}


def _write_manifest(folder: Path, manifest: dict) -> None:
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str), "utf-8")
    os.replace(tmp, folder / MANIFEST)


@dataclass
class ArtifactWriter:
    """Collects a training run's files in a hidden temporary folder, then seals it.

    Usage: ``w = ArtifactWriter.create(dir)``; write files into ``w.path``; ``w.seal(...)``
    writes the manifest and renames the folder to its version name (``w.path`` then is the
    version folder); on failure ``w.discard()`` removes the temporary folder. Until the rename
    nothing in the artifacts directory looks like a version.
    """

    artifacts_dir: Path
    path: Path

    @classmethod
    def create(cls, artifacts_dir: Path) -> ArtifactWriter:
        artifacts_dir = Path(artifacts_dir)
        artifacts_dir.mkdir(parents=True, exist_ok=True)
        # In the artifacts directory itself, so the final rename stays on one file system.
        return cls(artifacts_dir, Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=artifacts_dir)))

    def seal(self, **manifest_fields) -> dict:
        """Checksum every file, write ``manifest.json`` last, and rename the folder to a new
        version name (``v`` + UTC time, ``-1``, ``-2``... when taken). Returns the manifest.

        A version folder is never overwritten: renaming onto an existing, non-empty folder
        fails, and the next name is tried.
        """
        files = _checksums(self.path)
        stamp = dt.datetime.now(dt.UTC)
        base = f"v{stamp.strftime('%Y%m%dT%H%M%S')}"
        for n in range(1000):
            version = base + (f"-{n}" if n else "")
            target = self.artifacts_dir / version
            if target.exists() or target.is_symlink():
                continue
            manifest = {"format": FORMAT_VERSION, "version": version,
                        "created": stamp.isoformat(timespec="seconds"),
                        "libraries": library_versions(), **manifest_fields, "files": files}
            _write_manifest(self.path, manifest)
            try:
                os.rename(self.path, target)
            except OSError as exc:  # another run took the name between the check and here
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    continue
                raise
            self.path = target
            return manifest
        raise ArtifactError(f"could not find a free version name in {self.artifacts_dir}")

    def discard(self) -> None:
        """Remove the temporary folder of a run that did not seal (a sealed version stays)."""
        if self.path.name.startswith(TEMP_PREFIX):
            shutil.rmtree(self.path, ignore_errors=True)
