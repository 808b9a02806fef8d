"""Corpus readers: ``ravdess`` (a RAVDESS folder), ``manifest`` (a CSV), ``imagefolder`` (still
face images by class, e.g. FER-2013) and ``demo`` (a synthetic corpus in RAVDESS layout that
emokit generates on first use)."""

from __future__ import annotations

from emokit_core.hookspecs import hookimpl
from emokit_core.specs import CorpusSpec, lazy

EMOKIT_PLUGIN_API = 1


@hookimpl
def register_corpora(register):
    register(CorpusSpec("ravdess", lazy("emokit_core.corpora:read_ravdess"),
                        "RAVDESS folder: Actor_XX/MM-VV-EE-II-SS-RR-AA.{mp4,wav,flac}; the paper's five folds"))
    register(CorpusSpec("manifest", lazy("emokit_core.corpora:read_manifest"),
                        "CSV with path,label,speaker; seeded stratified group k-fold by speaker, stored as data"))
    register(CorpusSpec("imagefolder", lazy("emokit_core.corpora:read_image_folder"),
                        "still face images: [<split>/]<class>/<image>; each image a one-frame clip"))
    register(CorpusSpec("demo", lazy("emokit_plugins.corpora.demo:load_demo"),
                        "synthetic audio-visual corpus in RAVDESS layout, generated on first use", needs_path=False))
