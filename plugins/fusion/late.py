"""Late fusion on concatenated posteriors."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone


class LateFusion(ClassifierMixin, BaseEstimator):
    """Concatenate the posteriors of each modality (in sorted key order) and classify.

    The fitted fuser remembers the modality keys it was trained on and refuses others.
    """

    def __init__(self, estimator: Any = None):
        self.estimator = estimator

    def _stack(self, posteriors: Mapping[str, np.ndarray]) -> np.ndarray:
        keys = sorted(posteriors)
        if hasattr(self, "inputs_") and keys != self.inputs_:
            raise ValueError(f"fuser trained on {self.inputs_}, given {keys}")
        return np.hstack([np.asarray(posteriors[k], dtype=np.float64) for k in keys])

    def fit(self, posteriors: Mapping[str, np.ndarray], y: np.ndarray) -> "LateFusion":
        self.inputs_ = sorted(posteriors)
        self.estimator_ = clone(self.estimator).fit(self._stack(posteriors), np.asarray(y))
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, posteriors: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.estimator_.predict_proba(self._stack(posteriors))

    def predict(self, posteriors: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.estimator_.predict(self._stack(posteriors))
