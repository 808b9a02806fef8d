"""Corpus readers and subject-wise folds: RAVDESS folders and CSV manifests.

An actor is never on both sides of a fold: folds are lists of held-out actors, and the
runner derives each fold's training set as "every other actor".
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .contracts import Clip, Corpus
from .errors import CorpusError

RAVDESS_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
RAVDESS_MODALITIES = {"01": "audio-visual", "02": "video-only", "03": "audio-only"}
RAVDESS_CHANNELS = {"01": "speech", "02": "song"}
# The paper's five folds (section 3.1), by held-out actor.
PAPER_FOLDS = ((2, 5, 14, 15, 16), (3, 6, 7, 13, 18), (10, 11, 12, 19, 20), (8, 17, 21, 23, 24), (1, 4, 9, 22))
AUDIO_SUFFIXES = {".wav", ".flac"}
VIDEO_SUFFIXES = {".mp4"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


@dataclass(frozen=True)
class RavdessName:
    modality: str
    channel: str
    emotion: str
    intensity: str
    statement: str
    repetition: str
    actor: str

    @property
    def clip_id(self) -> str:
        """The codes without the modality: an audio-only and an audio-visual file of the
        same take share it, so they are one clip."""
        return "-".join((self.channel, self.emotion, self.intensity, self.statement, self.repetition, self.actor))

    @property
    def label(self) -> str:
        return RAVDESS_EMOTIONS[int(self.emotion) - 1]


def parse_ravdess_name(path: Path) -> RavdessName:
    """Parse ``MM-VV-EE-II-SS-RR-AA.ext``; raise :class:`CorpusError` naming the file otherwise."""
    match = _NAME.match(path.stem)
    why = None
    if not match:
        why = "is not of the form MM-VV-EE-II-SS-RR-AA (seven two-digit codes)"
    else:
        name = RavdessName(*match.groups())
        if name.modality not in RAVDESS_MODALITIES:
            why = f"has modality code {name.modality}; RAVDESS uses 01, 02 or 03"
        elif name.channel not in RAVDESS_CHANNELS:
            why = f"has vocal channel {name.channel}; RAVDESS uses 01 (speech) or 02 (song)"
        elif not 1 <= int(name.emotion) <= 8:
            why = f"has emotion code {name.emotion}; RAVDESS uses 01..08"
        elif name.intensity not in ("01", "02") or (name.emotion == "01" and name.intensity == "02"):
            why = f"has intensity {name.intensity} for emotion {name.emotion}"
        elif name.statement not in ("01", "02") or name.repetition not in ("01", "02"):
            why = "has a statement or repetition code other than 01/02"
        elif not 1 <= int(name.actor) <= 99:
            why = f"has actor code {name.actor}"
        elif path.parent.name.startswith("Actor_") and path.parent.name != f"Actor_{name.actor}":
            why = f"names actor {name.actor} but lies in {path.parent.name}"
        else:
            return name
    raise CorpusError(f"{path}: file name {why}", "rename it to the RAVDESS scheme or use a manifest CSV")


def read_ravdess(root: Path, *, name: str = "ravdess", channel: str = "speech",
                 folds: str | Sequence[Sequence[str]] = "paper", n_folds: int = 5, seed: int = 0,
                 strict: bool = False) -> Corpus:
    """Read a RAVDESS folder (``Actor_XX/MM-VV-EE-II-SS-RR-AA.{mp4,wav,flac}``).

    Audio-visual (01) files give both modalities; audio-only (03) files, when present for
    the same take, are what speech pipelines read; video-only (02) files serve faces when no
    audio-visual file exists.  Files whose names do not parse are listed in
    ``corpus.problems`` (or raise, with ``strict``).  ``folds="paper"`` uses the paper's five
    folds, ``"grouped"`` a seeded stratified group k-fold by actor.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise CorpusError(f"{root}: no such folder", "pass --data with a RAVDESS folder (Actor_01, Actor_02, ...)")
    problems: list[str] = []
    takes: dict[str, dict[str, Path]] = {}
    parsed: dict[str, RavdessName] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in AUDIO_SUFFIXES | VIDEO_SUFFIXES or not path.is_file():
            continue
        try:
            rav = parse_ravdess_name(path)
        except CorpusError as exc:
            if strict:
                raise
            problems.append(str(exc))
            continue
        if channel != "all" and RAVDESS_CHANNELS[rav.channel] != channel:
            continue
        kind = {"01": "av", "02": "video", "03": "audio"}[rav.modality]
        if kind == "audio" and path.suffix.lower() not in AUDIO_SUFFIXES:
            problems.append(f"{path}: audio-only code 03 on a {path.suffix} file; skipped")
            continue
        if kind in ("av", "video") and path.suffix.lower() not in VIDEO_SUFFIXES:
            problems.append(f"{path}: video code {rav.modality} on a {path.suffix} file; skipped")
            continue
        slot = takes.setdefault(rav.clip_id, {})
        if kind in slot:
            problems.append(f"{path}: duplicates {slot[kind]}; skipped")
            continue
        slot[kind] = path
        parsed[rav.clip_id] = rav
    clips = []
    for clip_id, files in sorted(takes.items()):
        rav = parsed[clip_id]
        video = files.get("av") or files.get("video")
        audio = files.get("audio") or files.get("av")
        clips.append(Clip(id=clip_id, actor=rav.actor, label=rav.label, audio_path=audio, video_path=video,
                          meta={"intensity": "strong" if rav.intensity == "02" else "normal",
                                "statement": int(rav.statement), "repetition": int(rav.repetition),
                                "channel": RAVDESS_CHANNELS[rav.channel],
                                "gender": "male" if int(rav.actor) % 2 else "female"}))
    if not clips:
        raise CorpusError(f"{root}: no RAVDESS clips found",
                          "expected Actor_XX folders with files such as 01-01-03-02-01-01-12.mp4")
    actors = sorted({c.actor for c in clips})
    if folds == "paper":
        fold_list = paper_folds(actors, root)
    elif folds == "grouped":
        fold_list = grouped_folds(clips, n_folds, seed)
    else:
        fold_list = [[f"{int(a):02d}" for a in fold] for fold in folds]  # type: ignore[union-attr]
    check_folds(fold_list, clips, root)
    return Corpus(name=name, root=root, clips=clips, classes=RAVDESS_EMOTIONS, folds=fold_list, problems=problems)


def paper_folds(actors: Iterable[str], root: Path | str = "corpus") -> list[list[str]]:
    present = set(actors)
    folds = [[f"{a:02d}" for a in fold if f"{a:02d}" in present] for fold in PAPER_FOLDS]
    unknown = present - {a for fold in folds for a in fold}
    if unknown or any(not fold for fold in folds):
        raise CorpusError(f"{root}: the paper's folds need actors 01-24; found {', '.join(sorted(present))}",
                          "use folds='grouped' (--folds grouped) for a subset of actors")
    return folds


def grouped_folds(clips: Sequence[Clip], n_folds: int, seed: int) -> list[list[str]]:
    """Stratified group k-fold by actor, seeded; returns held-out actors per fold."""
    from sklearn.model_selection import StratifiedGroupKFold

    actors = sorted({c.actor for c in clips})
    if len(actors) < n_folds:
        raise CorpusError(f"{len(actors)} actors (speakers) cannot fill {n_folds} folds",
                          "use fewer folds (--n-folds) or add actors")
    labels = [c.label for c in clips]
    groups = [c.actor for c in clips]
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = []
    for _, test in splitter.split(labels, labels, groups):
        folds.append(sorted({groups[i] for i in test}))
    return folds


def check_folds(folds: Sequence[Sequence[str]], clips: Sequence[Clip], root: Path | str) -> None:
    """Every actor held out exactly once; no fold empty."""
    seen: dict[str, int] = {}
    for k, fold in enumerate(folds):
        if not fold:
            raise CorpusError(f"{root}: fold {k} holds out no actor")
        for actor in fold:
            if actor in seen:
                raise CorpusError(f"{root}: actor {actor} is held out in folds {seen[actor]} and {k}")
            seen[actor] = k
    missing = {c.actor for c in clips} - set(seen)
    if missing:
        raise CorpusError(f"{root}: actors {', '.join(sorted(missing))} are in no fold",
                          "list every actor in exactly one fold")


def read_manifest(path: Path, *, name: str = "manifest", n_folds: int = 5, seed: int = 0,
                  folds_path: Path | None = None, folds: str = "grouped") -> Corpus:
    """A CSV with columns ``path,label,speaker`` (paths relative to the CSV).

    Folds: a stratified group k-fold by speaker, seeded, written beside the CSV as
    ``<name>.folds.csv`` (speaker,fold) the first time so that they are data: later runs
    and other tools read the same folds.  Optional columns ``id`` and ``video`` (a second
    media file for faces) are honoured.
    """
    path = Path(path).expanduser()
    if folds != "grouped":
        raise CorpusError(f"{path}: a manifest's folds are a stratified group k-fold by speaker ({folds!r} asked)",
                          "drop --folds; to change them, edit the stored NAME.folds.csv beside the manifest")
    if not path.is_file():
        raise CorpusError(f"{path}: no such manifest", "write a CSV with columns path,label,speaker")
    base = path.parent
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"path", "label", "speaker"} - set(reader.fieldnames or ())
        if missing:
            raise CorpusError(f"{path}: missing column(s) {', '.join(sorted(missing))}",
                              "the manifest needs the columns path,label,speaker")
        rows = list(reader)
    clips, problems = [], []
    for line, row in enumerate(rows, start=2):
        media = (base / row["path"]).resolve()
        if not media.is_file():
            problems.append(f"{path}:{line}: {media} does not exist; skipped")
            continue
        video = (base / row["video"]).resolve() if row.get("video") else None
        is_video = media.suffix.lower() in VIDEO_SUFFIXES
        clip_id = row.get("id") or (media.relative_to(base.resolve()).with_suffix("").as_posix()
                                    if media.is_relative_to(base.resolve()) else media.stem)
        clips.append(Clip(id=clip_id, actor=row["speaker"].strip(), label=row["label"].strip(),
                          audio_path=media, video_path=video or (media if is_video else None)))
    if not clips:
        raise CorpusError(f"{path}: no usable rows", "check the paths in the manifest")
    classes = tuple(sorted({c.label for c in clips}))
    folds_path = folds_path or path.with_suffix(".folds.csv")
    if folds_path.exists():
        assigned: dict[int, list[str]] = {}
        with folds_path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                assigned.setdefault(int(row["fold"]), []).append(row["speaker"])
        fold_list = [sorted(assigned[k]) for k in sorted(assigned)]
    else:
        fold_list = grouped_folds(clips, n_folds, seed)
        with folds_path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["speaker", "fold"])
            for k, fold in enumerate(fold_list):
                writer.writerows([speaker, k] for speaker in fold)
    check_folds(fold_list, clips, folds_path)
    return Corpus(name=name, root=base, clips=clips, classes=classes, folds=fold_list, problems=problems)


def read_image_folder(root: Path, *, name: str = "imagefolder", split: str | None = None, n_folds: int = 5,
                      seed: int = 0) -> Corpus:
    """A folder of still face images: ``<split>/<class>/<image>`` (FER-2013's ``train/`` and
    ``test/``) or ``<class>/<image>``.

    Each image is a clip whose ``video_path`` is the image (a one-frame video to the face
    extractors) and whose ``meta["split"]`` is its split folder; ``split`` reads one split only.
    The classes are the class folders' names in alphabetical order (the order of posterior
    columns).  With no subject ids each image is its own actor; the folds are a seeded stratified
    k-fold over the images.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise CorpusError(f"{root}: no such folder", "give a folder of <class>/<image> or <split>/<class>/<image>")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    nested = bool(folders) and all(any(c.is_dir() for c in f.iterdir()) for f in folders)
    splits = {f.name: f for f in folders} if nested else {"": root}
    if split is not None:
        if split not in splits:
            raise CorpusError(f"{root}: no split {split!r} (has {', '.join(sorted(splits)) or 'none'})",
                              "name one of its split folders, e.g. train or test")
        splits = {split: splits[split]}
    clips, problems = [], []
    for split_name, folder in splits.items():
        for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            for path in sorted(class_dir.iterdir()):
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    problems.append(f"{path}: not an image ({', '.join(sorted(IMAGE_SUFFIXES))}); skipped")
                    continue
                clip_id = path.relative_to(root).with_suffix("").as_posix()
                clips.append(Clip(id=clip_id, actor=clip_id, label=class_dir.name, video_path=path,
                                  meta={"split": split_name}))
    if not clips:
        raise CorpusError(f"{root}: no images found", "expected <class>/<image>.jpg (or <split>/<class>/...)")
    classes = tuple(sorted({c.label for c in clips}))
    return Corpus(name=name, root=root, clips=clips, classes=classes, folds=_image_folds(clips, n_folds, seed),
                  problems=problems)


def _image_folds(clips: Sequence[Clip], n_folds: int, seed: int) -> list[list[str]]:
    """A seeded stratified k-fold of images that are each their own actor."""
    from sklearn.model_selection import StratifiedKFold

    labels = [c.label for c in clips]
    smallest = min(labels.count(label) for label in set(labels))
    if smallest < n_folds:
        raise CorpusError(f"a class has {smallest} images, too few for {n_folds} folds", "use fewer folds")
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [sorted(clips[i].actor for i in test) for _, test in splitter.split(labels, labels)]
