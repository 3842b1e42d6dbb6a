"""The one recipe that fits the hybrid for serving, and the model files of an artifact.

``recommender train`` calls :func:`train_artifact`, which builds its inputs with the feature
pipeline (:class:`features.pipeline.FeaturePipeline`) and fits through
:func:`recommender.training.inputs.prepare_fit` and :func:`~recommender.training.inputs.fit_hybrid`,
as the benchmark does. The files a served model needs (the fitted
hybrid, the id mapping, the vocabularies, the users' and items' columns and the training
history) are written by :func:`write_model_files` and read by :func:`read_model_files`, so the
artifact's layout is described in this module only.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp

from features.bands import BAND_NAMES
from features.codes import Vocabulary
from features.frames import DataBundle, with_categorical_ids
from features.ids import IdMapping
from features.pipeline import FeaturePipeline, ModelInputs
from models.hybrid import HybridRanker
from recommender.training import artifacts, registry
from recommender.training.artifacts import ArtifactError
from recommender.training.inputs import FitData, fit_hybrid, prepare_fit

MODEL_DIR = "model"
TABLES_FILE = "tables.npz"
_USER_COLUMNS = ("age_band", "community_id", "street", "household_id", "birth_year")
_ITEM_COLUMNS = (
    "title", "description", "category", "target_bands", "tags", "community_id", "street",
    "fee_tier", "capacity", "status", "start_date", "end_date", "weekday", "start_time",
)


def train_artifact(bundle: DataBundle, artifacts_dir: Path, seed: int = 0,
                   promote: bool = True, params: dict | None = None,
                   by: str | None = None, params_file: Path | None = None) -> Path:
    """Train the hybrid on ``bundle`` and write a new artifact version in ``artifacts_dir``.

    The re-ranker learns on a temporal validation cut of the bundle (the last 20 % of time),
    then every component is refitted on all of it. The cut's targets include the residents who
    first appear after it, so the trees learn to rank newcomers (the cold start a served model
    meets) and not only residents with history. When the data has no such cut (a single
    timestamp), the cut is a random split of the bundle; the manifest's ``validation`` says
    which split was used and why. ``params`` (e.g. read from ``params_file``, a file
    ``recommender tune`` wrote) override the hybrid's defaults; the manifest's ``params`` are
    every parameter used, and ``params_file`` the file and what it set.

    The files are written to a temporary folder that becomes the version only when complete,
    and ``current`` moves (recorded in the registry's history as ``train``, by ``by`` or the OS
    user) only after that, when ``promote``: a run that fails or is interrupted leaves the
    versions and ``current`` as they were. The manifest records what the run can be repeated
    from: the data's hash, the code version, the library versions, the seed and the
    parameters. Returns the version folder.
    """
    bundle = with_categorical_ids(bundle)
    # The data's hash only goes into the manifest: it runs on the other core while the model
    # fits (hashlib and the column conversions work mostly outside the GIL).
    with ThreadPoolExecutor(1) as background:
        data_hash = background.submit(_bundle_hash, bundle)
        pipeline = pipeline_for(params).fit(bundle)
        model, data, timings = fit_recipe(bundle, pipeline, params, seed)
        sha256 = data_hash.result()
    mapping, inputs = pipeline.id_mapping_, data.full
    writer = artifacts.ArtifactWriter.create(Path(artifacts_dir))
    try:
        write_model_files(writer.path, model, inputs, mapping, pipeline.vocabulary_, bundle)
        writer.seal(
            data={"name": bundle.name, "kind": bundle.kind, "users": int(mapping.n_users),
                  "items": int(mapping.n_items), "interactions": int(len(bundle.interactions)),
                  "cutoff": str(inputs.cutoff), "sha256": sha256},
            code=artifacts.code_version(),
            seed=seed,
            params={**model.get_params(), "seed": seed},
            params_file=None if params_file is None else {
                "path": str(Path(params_file).resolve()), "params": dict(params or {})},
            validation_metrics=timings.pop("validation_metrics"),
            guard=timings.pop("guard"),
            validation=timings.pop("validation"),
            timings=timings,
        )
    finally:
        writer.discard()  # removes the temporary folder only: a sealed version stays
    if promote:
        registry.promote(Path(artifacts_dir), writer.path.name, by=by, action="train")
    return writer.path


def fit_recipe(train: DataBundle, pipeline: FeaturePipeline, params: dict | None = None,
               seed: int = 0) -> tuple[HybridRanker, FitData, dict]:
    """The served model's recipe on ``train``: the re-ranker learns on a temporal validation
    cut that includes newcomers, then :func:`~recommender.training.inputs.fit_hybrid` with
    ``params`` and ``seed``. ``train_artifact`` runs it on all the data; the evaluation report
    and the demand check run it on a test split's training part, so what they score is what
    ``train`` would have served at that cut. Returns ``(model, inputs, fit_hybrid's info)``.
    """
    data = served_inputs(train, pipeline, seed)
    model, info = fit_hybrid(data, params, seed)
    return model, data, info


def pipeline_for(params: dict | None) -> FeaturePipeline:
    """The feature pipeline that ``params`` need: the pairs' ages (a sort of the event log per
    cut-off) only when the recent-popularity component has a window in days."""
    return FeaturePipeline(pair_ages=(params or {}).get("recent_window_days") is not None)


def served_inputs(train: DataBundle, pipeline: FeaturePipeline, seed: int = 0) -> FitData:
    """The served recipe's inputs: ``train`` and its temporal validation cut with newcomers
    (what :func:`fit_recipe` fits on; ``recommender tune`` scores its trials on this cut)."""
    return prepare_fit(train, pipeline, "temporal", seed=seed, warm_only=False)


def write_model_files(path: Path, model: HybridRanker, inputs: ModelInputs,
                      mapping: IdMapping, vocab: Vocabulary, bundle: DataBundle) -> None:
    """Write the fitted model and the tables serving needs into an artifact folder."""
    model.save(path / MODEL_DIR)
    # Serving answers with the band the model was trained with (at the training cut).
    users = bundle.users.set_index("user_id")
    names = np.array([*BAND_NAMES, None], dtype=object)  # code -1 -> None
    codes = inputs.user_band[mapping.user_index(users.index.to_series())]
    users = users.assign(age_band=names[codes])
    np.savez(
        path / TABLES_FILE,
        **{f"map_{k}": v for k, v in mapping.to_arrays().items()},
        **{f"vocab_{k}": v for k, v in vocab.to_arrays().items()},
        **_frame_arrays("users", users, _USER_COLUMNS),
        **_frame_arrays("items", bundle.items.set_index("item_id"), _ITEM_COLUMNS),
        **_community_name_arrays(bundle.meta.get("community_names", {})),
        X_data=inputs.X.data, X_indices=inputs.X.indices, X_indptr=inputs.X.indptr,
        X_shape=np.array(inputs.X.shape), cutoff=np.array(str(inputs.cutoff)),
    )


def read_model_files(path: Path) -> tuple:
    """Read what :func:`write_model_files` wrote (checksums are checked by the caller).

    Returns ``(model, mapping, vocab, users, items, history, community_names)``; raises
    :class:`ArtifactError` when the files do not match this version of the engine.
    """
    try:
        model = HybridRanker.load(path / MODEL_DIR)
        with np.load(path / TABLES_FILE, allow_pickle=False) as z:
            mapping = IdMapping.from_arrays(
                {k[4:]: z[k] for k in z.files if k.startswith("map_")})
            vocab = Vocabulary.from_arrays(
                {k[6:]: z[k] for k in z.files if k.startswith("vocab_")})
            users = _arrays_frame("users", z)
            items = _arrays_frame("items", z)
            names = dict(zip(z["community_names_ids"].tolist(),
                             z["community_names_names"].tolist())) if (
                "community_names_ids" in z.files) else {}
            shape = tuple(z["X_shape"])
            history = sp.csr_matrix((z["X_data"], z["X_indices"], z["X_indptr"]), shape)
    except (KeyError, ValueError, OSError) as exc:
        raise ArtifactError(f"{path}: artifact does not match this engine "
                                      f"({exc}); an artifact from an older version is "
                                      "retrained with `recommender train`") from exc
    return model, mapping, vocab, users, items, history, names


def _frame_arrays(prefix: str, frame: pd.DataFrame, columns) -> dict[str, np.ndarray]:
    out = {f"{prefix}__index": frame.index.astype(str).to_numpy(dtype=str)}
    for c in columns:
        if c in frame:
            values = frame[c]
            if pd.api.types.is_datetime64_any_dtype(values):
                values = values.dt.strftime("%Y-%m-%dT%H:%M:%S")
            out[f"{prefix}_{c}"] = values.astype(object).where(values.notna(), "").astype(
                str).to_numpy(dtype=str)
    return out


def _community_name_arrays(names: dict) -> dict[str, np.ndarray]:
    ids = [str(k) for k in names]
    return {"community_names_ids": np.array(ids, dtype=str),
            "community_names_names": np.array([str(names[k]) for k in names], dtype=str)}


def _arrays_frame(prefix: str, z) -> pd.DataFrame:
    index = pd.Index(z[f"{prefix}__index"])
    data = {}
    for key in z.files:
        if key.startswith(f"{prefix}_") and not key.startswith(f"{prefix}__"):
            col = key[len(prefix) + 1:]
            values = pd.Series(z[key], index=index, dtype=object).replace("", None)
            if col in ("start_date", "end_date"):
                values = pd.to_datetime(values, format="ISO8601")
            elif col in ("capacity", "weekday", "birth_year"):
                values = pd.to_numeric(values).astype("Int64")
            data[col] = values
    return pd.DataFrame(data, index=index)


def _bundle_hash(bundle: DataBundle) -> str:
    """sha256 over every column of the interactions, users and items (names and values, in
    row order): what the model learns from, so equal hashes mean the same training data."""
    digest = hashlib.sha256()
    for table in ("interactions", "users", "items"):
        frame = getattr(bundle, table)
        for col in sorted(frame.columns, key=str):
            digest.update(f"{table}.{col}".encode())
            for part in _column_bytes(frame[col]):
                digest.update(part)
    return digest.hexdigest()


def _column_bytes(values: pd.Series) -> list:
    """The buffers a column's values are hashed as.

    Text (plain or categorical) goes in as its UTF-8 bytes, each value's length and where
    values are missing: pandas' per-value hash costs about a second for 2.5M distinct event
    ids, these bytes a few milliseconds, and they are the same whether the text is held as
    Arrow, Python objects or categories. Anything else goes in as pandas hashes its values
    (a categorical of numbers as its values, not its codes).
    """
    text = _as_text(values)
    if text is None:
        return [pd.util.hash_pandas_object(values, index=False).to_numpy()]
    missing = text.is_null().to_numpy(zero_copy_only=False)
    text = text.fill_null("")  # a missing value's slot holds no bytes
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)[
        text.offset:text.offset + len(text) + 1]
    data = text.buffers()[2]
    chars = b"" if data is None else memoryview(data)[offsets[0]:offsets[-1]]
    return [b"text", np.diff(offsets), missing, chars]


def _as_text(values: pd.Series) -> pa.LargeStringArray | None:
    """A text column as one Arrow array of large strings; None for any other column."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        if not pd.api.types.is_string_dtype(dtype.categories.dtype):
            return None
    elif not pd.api.types.is_string_dtype(dtype):
        return None
    try:
        arr = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # objects that are not all text
        return None
    # Arrow-backed text may come in several chunks: each is decoded, then they are joined
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    chunks = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in chunks]
    if not all(pa.types.is_string(c.type) or pa.types.is_large_string(c.type) for c in chunks):
        return None
    return pa.concat_arrays([c.cast(pa.large_string()) for c in chunks]
                            or [pa.array([], pa.large_string())])
