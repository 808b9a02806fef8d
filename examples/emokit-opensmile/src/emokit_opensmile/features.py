"""openSMILE functionals per clip, as an emokit speech extractor."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from emokit_core.contracts import SPEECH, Clip

FEATURE_SETS = ("eGeMAPSv02", "GeMAPSv01b", "ComParE_2016")


class OpenSmileFunctionals(BaseEstimator):
    """One vector of openSMILE functionals per clip (88 for eGeMAPSv02, 62 for GeMAPSv01b,
    6373 for ComParE_2016), from emokit's 16 kHz mono waveform."""

    modality = SPEECH
    weights_sha256 = None

    def __init__(self, feature_set: str = "eGeMAPSv02"):
        self.feature_set = feature_set

    @property
    def cache_version(self) -> str:
        # Another openSMILE release may compute other values: it must not reuse cached features.
        return f"1+opensmile{metadata.version('opensmile')}"

    def extract_audio(self, audio: np.ndarray, sample_rate: int, clip: Clip) -> np.ndarray:
        frame = self._smile().process_signal(np.asarray(audio, dtype=np.float32), sample_rate)
        return frame.to_numpy(dtype=np.float32).reshape(-1)

    def _smile(self):
        """The openSMILE engine, made once per process (it wraps a native object that is not pickled)."""
        if getattr(self, "_engine", None) is None:
            import opensmile

            if self.feature_set not in FEATURE_SETS:
                from emokit_core.errors import EmokitError

                raise EmokitError(f"unknown openSMILE feature set {self.feature_set!r}",
                                  f"choose one of {', '.join(FEATURE_SETS)}")
            self._engine = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, self.feature_set),
                                           feature_level=opensmile.FeatureLevel.Functionals)
        return self._engine

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_engine", None)  # rebuilt in the process that uses it
        return state
