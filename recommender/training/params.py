"""The hybrid's hyper-parameters as a file: what ``recommender tune`` writes and
``recommender train --params FILE`` reads, and the parameters an artifact was trained with.

The file is a JSON object ``{"params": {name: value, ...}, "tuning": {...}}``: ``params`` are
:class:`models.hybrid.HybridRanker` constructor parameters (any subset; the others keep their
defaults), ``tuning`` is optional and only describes where the values came from. The seed is
not a parameter of the file: ``--seed`` sets it, so one file can be trained with several seeds.
"""

from __future__ import annotations

import json
from pathlib import Path

from models.hybrid import HybridRanker

__all__ = ["ParamsError", "artifact_params", "check_params", "read_params", "write_params"]

FILE_KEYS = ("params", "tuning")
# Set by the seed (``--seed``, the manifest's ``seed``), never by a params file.
SEED_PARAM = "random_state"


class ParamsError(ValueError):
    """A parameters file that cannot be used; the message is one line naming the field."""


def check_params(params: dict, source: str = "params") -> dict:
    """``params`` if every name is a hybrid parameter with a valid value; else ParamsError.

    Values are checked exactly as :meth:`HybridRanker.fit` checks them (a whole number is not
    accepted where a float is not: ``knn_neighbours=100.0`` is refused, not truncated).
    """
    if not isinstance(params, dict):
        raise ParamsError(f"{source}: must be an object of parameter names and values, got "
                          f"{type(params).__name__}")
    names = set(HybridRanker().get_params()) - {SEED_PARAM}
    for name in params:
        if name == SEED_PARAM:
            raise ParamsError(f"{source}.{name}: the seed is not a parameter of the file; give "
                              "it with --seed")
        if name not in names:
            raise ParamsError(f"{source}.{name}: unknown parameter of the hybrid; known: "
                              f"{', '.join(sorted(names))}")
    try:
        HybridRanker(**params).validate_params()
    except ValueError as exc:
        raise ParamsError(f"{source}.{exc}") from None
    return dict(params)


def read_params(path: Path) -> dict:
    """The checked ``params`` of a parameters file (see the module docstring)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such parameters file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamsError(f"{path}: cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ParamsError(f"{path}: not JSON ({exc.msg} at line {exc.lineno} column "
                          f"{exc.colno})") from None
    if not isinstance(doc, dict) or "params" not in doc:
        raise ParamsError(f"{path}: must be a JSON object with a \"params\" object "
                          "(as `recommender tune` writes)")
    unknown = sorted(set(doc) - set(FILE_KEYS))
    if unknown:
        raise ParamsError(f"{path}: unknown key {unknown[0]!r}; a parameters file holds "
                          f"{' and '.join(FILE_KEYS)}")
    return check_params(doc["params"], f"{path}: params")


def write_params(path: Path, params: dict, tuning: dict | None = None) -> Path:
    """Write a parameters file that :func:`read_params` accepts (checked first)."""
    path = Path(path)
    doc = {"params": check_params(params)}
    if tuning is not None:
        doc["tuning"] = tuning
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=float) + "\n", "utf-8")
    tmp.replace(path)
    return path


def artifact_params(manifest: dict) -> tuple[dict, int]:
    """The hybrid parameters and the seed an artifact was trained with, from its manifest."""
    recorded = dict(manifest.get("params") or {})
    seed = recorded.pop("seed", recorded.get(SEED_PARAM, 0))
    recorded.pop(SEED_PARAM, None)
    return check_params(recorded, f"manifest {manifest.get('version', '')}: params"), int(seed)
