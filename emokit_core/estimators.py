"""Generic clip-level models that adapt scikit-learn-style parts to emokit's data shapes.

The runner hands a modality model a list with one feature array per clip.
:class:`VectorClipModel` stacks per-clip vectors for an ordinary classifier;
:class:`FrameClipModel` trains a frame classifier on every frame (frames inherit their
clip's label) and an aggregator on the per-clip sequences of its outputs.
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone


def fit_grouped(model: Any, X: Any, y: np.ndarray, groups: np.ndarray | None) -> Any:
    """``model.fit(X, y)``, with the actors as ``groups=`` where its fit takes them (models that
    hold out validation data do, so that it is whole actors). Returns what fit returns."""
    if groups is not None and "groups" in inspect.signature(model.fit).parameters:
        return model.fit(X, y, groups=groups)
    return model.fit(X, y)


class VectorClipModel(ClassifierMixin, BaseEstimator):
    """One feature vector per clip -> ``estimator`` (any classifier with predict_proba)."""

    def __init__(self, estimator: Any = None):
        self.estimator = estimator

    def fit(self, X: Sequence[np.ndarray], y: np.ndarray) -> "VectorClipModel":
        self.estimator_ = clone(self.estimator).fit(_stack(X), np.asarray(y))
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X: Sequence[np.ndarray]) -> np.ndarray:
        return self.estimator_.predict_proba(_stack(X))

    def predict(self, X: Sequence[np.ndarray]) -> np.ndarray:
        return self.estimator_.predict(_stack(X))


def _stack(X: Sequence[np.ndarray]) -> np.ndarray:
    return np.stack([np.asarray(x, dtype=np.float64).reshape(-1) for x in X])


class PooledClipModel(ClassifierMixin, BaseEstimator):
    """Per-frame features ``[frames, dim]`` per clip, pooled over the clip (``mean``, or
    ``mean_std``: the mean and the standard deviation side by side) -> ``estimator``.

    A clip model on its own (frozen per-frame features from an extractor) or the aggregator of
    a :class:`FrameClipModel` (the frame classifier's per-frame outputs)."""

    def __init__(self, estimator: Any = None, pooling: str = "mean_std"):
        self.estimator = estimator
        self.pooling = pooling

    def pool(self, X: Sequence[np.ndarray]) -> np.ndarray:
        if self.pooling not in ("mean", "mean_std"):
            raise ValueError(f"pooling must be mean or mean_std, not {self.pooling!r}")
        rows = []
        for x in X:
            frames = np.asarray(x, dtype=np.float64)
            frames = frames.reshape(len(frames), -1)
            parts = [frames.mean(axis=0)] + ([frames.std(axis=0)] if self.pooling == "mean_std" else [])
            rows.append(np.concatenate(parts))
        return np.stack(rows)

    def fit(self, X: Sequence[np.ndarray], y: np.ndarray) -> "PooledClipModel":
        self.estimator_ = clone(self.estimator).fit(self.pool(X), np.asarray(y))
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X: Sequence[np.ndarray]) -> np.ndarray:
        return self.estimator_.predict_proba(self.pool(X))

    def predict(self, X: Sequence[np.ndarray]) -> np.ndarray:
        return self.estimator_.predict(self.pool(X))


class FrameClipModel(ClassifierMixin, BaseEstimator):
    """Per-frame features ``[frames, dim]`` per clip -> frame classifier -> aggregator.

    ``max_frames_per_clip`` caps the frames each training clip contributes (evenly spaced),
    so memory does not grow with clip length; prediction always uses every frame.
    """

    def __init__(self, frame_classifier: Any = None, aggregator: Any = None, max_frames_per_clip: int = 0):
        self.frame_classifier = frame_classifier
        self.aggregator = aggregator
        self.max_frames_per_clip = max_frames_per_clip

    def _subsample(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        cap = self.max_frames_per_clip
        if cap and len(frames) > cap:
            frames = frames[np.linspace(0, len(frames) - 1, cap).round().astype(int)]
        return frames.reshape(len(frames), -1)

    def fit(self, X: Sequence[np.ndarray], y: np.ndarray, groups: np.ndarray | None = None) -> "FrameClipModel":
        y = np.asarray(y)
        parts = [self._subsample(x) for x in X]
        frames = np.concatenate(parts)  # kept in its stored dtype (uint8 frames stay small)
        counts = [len(p) for p in parts]
        labels = np.repeat(y, counts)
        self.__dict__.pop("_last_outputs", None)
        self.frame_classifier_ = clone(self.frame_classifier)
        # Frames carry their clip's actor, so early stopping validates on whole actors.
        fit_grouped(self.frame_classifier_, frames, labels,
                    None if groups is None else np.repeat(np.asarray(groups), counts))
        self.classes_ = self.frame_classifier_.classes_
        aggregator = clone(self.aggregator)
        outputs = self.frame_outputs(X)
        fit_grouped(aggregator, outputs, y, groups)
        self.aggregator_ = aggregator
        self.__dict__.pop("_last_outputs", None)  # the training clips' outputs are not asked for again
        return self

    def frame_outputs(self, X: Sequence[np.ndarray]) -> list[np.ndarray]:
        """What the aggregator reads for every frame, one ``[frames, dim]`` array per clip: the
        frame classifier's ``transform`` where it has one (e.g. an STN's flatten-810), else its
        posteriors."""
        from .progress import task

        # predict_proba, predict and frame_attention of the same clips (the runner asks for all
        # three) share one pass of the frame classifier: the last clips' outputs are kept, keyed
        # by the identity of the arrays given, which the memo holds so that the key stays theirs.
        memo = getattr(self, "_last_outputs", None)
        if memo is not None and len(memo[0]) == len(X) and all(a is b for a, b in zip(memo[0], X)):
            return memo[1]
        out = []
        with task("frame outputs (clips)", len(X)) as advance:
            for x in X:
                flat = np.asarray(x).reshape(len(x), -1)
                if hasattr(self.frame_classifier_, "transform"):
                    out.append(self.frame_classifier_.transform(flat))
                else:
                    out.append(self.frame_classifier_.predict_proba(flat))
                advance()
        self._last_outputs = (list(X), out)
        return out

    def predict_proba(self, X: Sequence[np.ndarray]) -> np.ndarray:
        return self.aggregator_.predict_proba(self.frame_outputs(X))

    def predict(self, X: Sequence[np.ndarray]) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_last_outputs", None)  # a cache of the last clips' outputs, never part of the model
        return state

    def frame_attention(self, X: Sequence[np.ndarray]) -> list[np.ndarray] | None:
        """How much each frame weighed in each clip's verdict (``[frames]`` per clip, summing
        to 1), where the aggregator attends (the attention bi-LSTM); ``None`` otherwise."""
        if not hasattr(self.aggregator_, "attention"):
            return None
        return self.aggregator_.attention(self.frame_outputs(X))


class MaxVoting(BaseEstimator):
    """The most frequent frame class wins (paper 3.3).

    Ties go to the tied class with the highest mean posterior, then the lowest index, so
    the result never depends on frame order.  The output is the vote share per class.
    ``merge`` maps classes onto others before voting (e.g. calm -> neutral for models
    that lack calm).
    """

    def __init__(self, merge: dict[int, int] | None = None):
        self.merge = merge

    def fit(self, sequences: Sequence[np.ndarray], y: np.ndarray | None = None) -> "MaxVoting":
        return self

    def predict_proba(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        out = []
        for seq in sequences:
            seq = np.asarray(seq, dtype=np.float64)
            n_classes = seq.shape[1]
            if self.merge:
                seq = seq.copy()
                for src, dst in self.merge.items():
                    seq[:, dst] += seq[:, src]
                    seq[:, src] = 0.0
            votes = np.bincount(seq.argmax(axis=1), minlength=n_classes).astype(np.float64)
            tied = np.flatnonzero(votes == votes.max())
            winner = tied[np.argmax(seq.mean(axis=0)[tied])]  # argmax picks the lowest index on equal means
            share = votes / votes.sum()
            # The winner gets strictly the largest value so argmax agrees with the tie-break.
            share[winner] += 1e-9
            out.append(share / share.sum())
        return np.vstack(out)


class ZeroR(ClassifierMixin, BaseEstimator):
    """The paper's ZeroR reference: always the training set's most frequent class.

    Its posteriors are the training class frequencies, so argmax gives the majority class
    (lowest index on ties)."""

    def fit(self, X: Sequence[Any], y: np.ndarray) -> "ZeroR":
        y = np.asarray(y, dtype=int)
        self.classes_ = np.unique(y)
        counts = np.array([(y == c).sum() for c in self.classes_], dtype=np.float64)
        self.prior_ = counts / counts.sum()
        return self

    def predict_proba(self, X: Sequence[Any]) -> np.ndarray:
        return np.tile(self.prior_, (len(X), 1))

    def predict(self, X: Sequence[Any]) -> np.ndarray:
        return np.full(len(X), self.classes_[np.argmax(self.prior_)])


class SVCWithPosteriors(ClassifierMixin, BaseEstimator):
    """An SVC with labels from its own decision function (one-vs-one votes, as ``SVC.predict``)
    and posteriors from Platt scaling fitted on internal 5-fold cross-validation — what
    ``SVC(probability=True)`` did before scikit-learn 1.9 deprecated it.  As there, the label
    need not be the argmax of the posteriors."""

    def __init__(self, kernel: str = "rbf", C: float = 1.0, gamma: Any = "scale", random_state: Any = None):
        self.kernel = kernel
        self.C = C
        self.gamma = gamma
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> "SVCWithPosteriors":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import SVC

        svc = SVC(kernel=self.kernel, C=self.C, gamma=self.gamma, random_state=self.random_state)
        # ensemble=False: one SVC fit on all the data, its scores calibrated on cross-validation.
        self.calibrated_ = CalibratedClassifierCV(svc, method="sigmoid", cv=5, ensemble=False).fit(X, y)
        self.svc_ = self.calibrated_.calibrated_classifiers_[0].estimator
        self.classes_ = self.calibrated_.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.calibrated_.predict_proba(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.svc_.predict(X)
