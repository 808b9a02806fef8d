"""What the registry hands back: frozen records, one shape wherever a thing appears.

A run's corpus is a :class:`CorpusRecord` in :meth:`~Registry.list_runs` as in
:meth:`~Registry.get_run`; no ORM object or database row leaves the registry.
:meth:`Record.as_dict` gives the JSON shape the command line prints.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = ["ArtifactRecord", "CorpusRecord", "FoldRecord", "LeaderboardRow", "PredictionRecord", "Record",
           "RunInfo", "RunRecord", "RunSummary", "WeightsRecord"]


def plain(obj: Any) -> Any:
    """JSON-ready copy: numpy scalars/arrays, tuples, sets and paths become plain Python."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((plain(v) for v in obj), key=repr)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist"):  # numpy array or scalar, torch tensor
        return plain(obj.tolist())
    if hasattr(obj, "item"):
        return plain(obj.item())
    return str(obj)


def json_dumps(obj: Any) -> str:
    return json.dumps(plain(obj), ensure_ascii=False)


def number(x: Any) -> float | None:
    """A float for the database; NaN/inf become NULL."""
    if x is None:
        return None
    v = float(x.item() if hasattr(x, "item") else x)
    return v if math.isfinite(v) else None


def utc(dt: datetime | str | None) -> datetime | None:
    if dt is None:
        return None
    if isinstance(dt, str):  # a driver that hands back text
        dt = datetime.fromisoformat(dt)
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


class Record:
    """Base of the records: :meth:`as_dict` adds the derived properties named in ``_derived``."""

    _derived: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: _as_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        out.update({name: _as_plain(getattr(self, name)) for name in self._derived})
        return out


def _as_plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.as_dict()
    if isinstance(value, (list, tuple)):
        return [_as_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _as_plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class RunInfo(Record):
    """What :meth:`Registry.start_run` hands back."""

    run_id: int
    model: str
    version: int
    resumed: bool
    finished_folds: frozenset[int] = field(default_factory=frozenset)
    model_version_id: int | None = None
    corpus_id: int | None = None


@dataclass(frozen=True)
class CorpusRecord(Record):
    """A registered corpus; ``reader``: the corpus-table name that read it and ``reader_options``
    the options it was given (None for a corpus registered before revision 0004)."""

    id: int
    name: str
    fingerprint: str
    classes: list[str]
    n_clips: int
    root: str
    reader: str | None
    reader_options: dict[str, Any] | None


@dataclass(frozen=True)
class RunSummary(Record):
    """A run as :meth:`Registry.list_runs` lists it: ``n_folds`` folds recorded so far, the
    pooled ``scores`` (empty until it finishes) and its tags."""

    run_id: int
    model: str
    modality: str
    version: int
    config_hash: str
    profile: str
    seed: int
    corpus: CorpusRecord
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    seconds: float | None
    host: str
    pid: int
    error: str | None
    n_folds: int
    scores: dict[str, float | None]
    tags: dict[str, str]

    _derived = ("ref", "accuracy")

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    @property
    def accuracy(self) -> float | None:
        return self.scores.get("accuracy")


@dataclass(frozen=True)
class FoldRecord(Record):
    fold: int
    held_out: list[str] | None
    n_train: int
    n_test: int
    seconds: float
    created_at: datetime | None
    scores: dict[str, float | None]


@dataclass(frozen=True)
class ArtifactRecord(Record):
    fold: int | None  # None: belongs to the whole run
    name: str
    sha256: str
    size: int
    path: str


@dataclass(frozen=True)
class RunRecord(RunSummary):
    """Everything about one run: its version's ``params``, the held-out actors of each fold
    (``folds``), the input runs of a fusion run, every recorded fold and artifact."""

    model_version_id: int
    params: dict[str, Any]
    folds: list[list[str]]
    library_versions: dict[str, Any]
    weights: dict[str, Any] | None
    inputs: dict[str, int]
    command: str
    fold_results: list[FoldRecord]
    n_predictions: int
    artifacts: list[ArtifactRecord]


@dataclass(frozen=True)
class PredictionRecord(Record):
    """The out-of-fold posteriors of one clip; ``label`` and ``pred`` index the corpus's classes."""

    clip_id: str
    actor: str
    fold: int
    label: int
    pred: int
    probs: list[float | None]


@dataclass(frozen=True)
class LeaderboardRow(Record):
    """A finished run on the leaderboard; ``value`` is the ranking ``metric``, ``fold_std`` the
    sample standard deviation of its per-fold accuracy, and ``differs`` the parameters (with this
    version's values) that are not the same in every finished version of that model on that corpus."""

    corpus: str
    corpus_fingerprint: str
    modality: str
    model: str
    version: int
    run_id: int
    profile: str
    metric: str
    value: float
    accuracy: float | None
    ci95: float | None
    macro_f1: float | None
    uar: float | None
    zeror_accuracy: float | None
    fold_mean: float | None
    fold_std: float | None
    n_folds: int
    n_clips: int
    finished_at: datetime | None
    config_hash: str
    params: dict[str, Any]
    tags: dict[str, str]
    scores: dict[str, float | None]
    differs: dict[str, Any]


@dataclass(frozen=True)
class WeightsRecord(Record):
    """A registered checkpoint; ``name`` is None for a file given by path only. ``provenance``:
    what made it, where known (``emokit pretrain`` records its architecture, source corpus and
    fingerprint, seed, epochs and test accuracy)."""

    name: str | None
    path: str
    sha256: str
    size: int | None = None
    kind: str | None = None
    created_at: datetime | None = None
    provenance: dict[str, Any] | None = None
