"""What a run recorded about why it decided: each held-out clip's attention over its frames.

A fold's ``attention`` artifact is an ``.npz`` archive (no pickles) mapping clip ids to
float32 ``[frames]`` weights; :func:`attention_weights` gathers every fold of a run.
"""

from __future__ import annotations

import io
from typing import Any, Mapping

import numpy as np

from .errors import RegistryError

ATTENTION_ARTIFACT = "attention"


def pack_attention(weights: Mapping[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{clip_id: np.asarray(w, dtype=np.float32) for clip_id, w in weights.items()})
    return buffer.getvalue()


def unpack_attention(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {clip_id: archive[clip_id] for clip_id in archive.files}


def attention_weights(registry: Any, run_id: int) -> dict[str, np.ndarray]:
    """Every held-out clip's frame weights over all recorded folds of a run; empty for a
    model that does not attend (max-voting, an SVM)."""
    run = registry.get_run(run_id)
    folds = sorted({a.fold for a in run.artifacts if a.name == ATTENTION_ARTIFACT
                    and a.fold is not None})
    out: dict[str, np.ndarray] = {}
    for fold in folds:
        try:
            out.update(unpack_attention(registry.fold_artifact(run_id, fold, ATTENTION_ARTIFACT)))
        except (ValueError, OSError) as exc:  # a damaged archive that still matched its checksum
            raise RegistryError(f"run {run_id}, fold {fold}: the attention artifact cannot be read ({exc})",
                                "rerun the model with --fresh") from exc
    return out
