"""``emokit pretrain NAME --data DIR``: a network trained on a source corpus of still face images
(an image folder with ``train/`` and ``test/``, e.g. FER-2013), scored on its test split and
registered as weights with what made it.

The network comes from the ``pretrainer`` component family (:class:`~emokit_core.contracts.Pretrainer`),
so a plugin's network can be pretrained the same way. Features go through the feature cache, and
the training writes a checkpoint at each epoch: the same command given again after an
interruption continues where it stopped and ends as an uninterrupted run would.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .cache import FeatureCache, default_home
from .errors import CorpusError
from .progress import Reporter, reporting

SOURCE_READER = "imagefolder"


@dataclass(frozen=True)
class PretrainOutcome:
    """What :func:`pretrain` made: the registered weights and the source test scores."""

    weights: Any  # the registry's WeightsRecord
    test_accuracy: float
    recall: dict[str, float]  # per class, on the test split
    n_train: int
    n_test: int
    seconds: float
    resumed: bool
    validation: list[float]  # accuracy on the held-out tenth of the training images, per epoch
    best_epoch: int  # the epoch whose network was kept

    def to_dict(self) -> dict[str, Any]:
        return {"weights": self.weights.as_dict(), "test_accuracy": self.test_accuracy, "recall": self.recall,
                "n_train": self.n_train, "n_test": self.n_test, "seconds": round(self.seconds, 1),
                "resumed": self.resumed, "validation": self.validation, "best_epoch": self.best_epoch}


def pretrain(host: Any, name: str, data: str | Path, registry: Any, *, weights_name: str | None = None,
             epochs: int = 20, seed: int = 0, device: str = "auto", workers: int = 1,
             cache: FeatureCache | None = None, reporter: Reporter | None = None, replace: bool = False,
             out_dir: str | Path | None = None) -> PretrainOutcome:
    """Pretrain the ``pretrainer`` component ``name`` on the image folder ``data`` and register it
    as ``weights_name`` (default ``<name>-<source folder>``); see the module docs."""
    from .extraction import extract_corpus
    from .specs import Recipe
    from .training import check_device

    started = time.perf_counter()
    reporter = reporter or Reporter()
    check_device(device)
    trainer = host.component("pretrainer", name).factory()
    corpus = host.read_corpus(SOURCE_READER, data)
    splits = {c.meta.get("split") for c in corpus.clips}
    if not {"train", "test"} <= splits:
        raise CorpusError(f"{corpus.root}: pretraining needs train/ and test/ split folders (found "
                          f"{', '.join(sorted(s or '(none)' for s in splits))})",
                          "lay the images out as train/<class>/<image> and test/<class>/<image>")
    weights_name = weights_name or f"{name}-{corpus.root.name}"
    cache = cache or FeatureCache()
    keys, skipped = extract_corpus(corpus, {name: Recipe(trainer.extractor(), None)}, cache, reporter, workers)
    for clip_id, why in sorted(skipped.items())[:5]:
        reporter.warn(f"{clip_id}: {why}")
    classes = list(corpus.classes)
    parts = {split: [c for c in corpus.clips if c.meta.get("split") == split and c.id in keys[name]]
             for split in ("train", "test")}
    X = {split: [cache.load(keys[name][c.id])[0] for c in clips] for split, clips in parts.items()}
    y = {split: np.array([classes.index(c.label) for c in clips]) for split, clips in parts.items()}
    model = trainer.model(epochs=epochs, seed=seed, device=device)
    fingerprint = corpus.fingerprint()
    checkpoint = (Path(out_dir) if out_dir else default_home() / "pretrain") / _checkpoint_name(
        weights_name, name, fingerprint, epochs, seed)
    resumed = checkpoint.is_file()
    if resumed:
        reporter.info(f"continuing the interrupted training from {checkpoint}")
    with reporting(reporter):
        model.fit(X["train"], y["train"], checkpoint=checkpoint)
    predicted = np.asarray(model.predict(X["test"]))
    truth = y["test"]
    recall = {cls: float((predicted[truth == k] == k).mean()) for k, cls in enumerate(classes) if (truth == k).any()}
    accuracy = float((predicted == truth).mean())
    validation = [float(score) for _, score in model.history_]
    best_epoch = 1 + int(np.argmax(validation)) if validation else epochs
    out = Path(out_dir) if out_dir else default_home() / "weights"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{weights_name}.pt"
    trainer.export(model, path)
    provenance = {"architecture": trainer.architecture, "pretrainer": name, "source_corpus": corpus.root.name,
                  "source_fingerprint": fingerprint, "classes": classes, "seed": seed, "epochs": epochs,
                  "n_train": len(y["train"]), "n_test": len(truth), "best_epoch": best_epoch, "test_accuracy": accuracy,
                  "test_recall": recall, "command": f"emokit pretrain {name} --data {corpus.root} --epochs {epochs} "
                                                    f"--seed {seed} --name {weights_name}"}
    record = registry.add_weights(weights_name, path, kind=trainer.kind, replace=replace, provenance=provenance)
    return PretrainOutcome(record, accuracy, recall, len(y["train"]), len(truth), time.perf_counter() - started,
                           resumed, validation, best_epoch)


def _checkpoint_name(weights_name: str, name: str, fingerprint: str, epochs: int, seed: int) -> str:
    what = json.dumps([name, fingerprint, epochs, seed]).encode()
    return f"{weights_name}-{hashlib.sha256(what).hexdigest()[:12]}.ckpt"
