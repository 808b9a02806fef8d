from pathlib import Path

import pytest

from emokit_core.corpora import (PAPER_FOLDS, RAVDESS_EMOTIONS, check_folds, parse_ravdess_name, read_manifest,
                                 read_ravdess)
from emokit_core.errors import CorpusError


def touch_ravdess(root: Path, actors=range(1, 25), modality="01", suffix=".mp4", emotions=range(1, 9)):
    for a in actors:
        folder = root / f"Actor_{a:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for e in emotions:
            for i in ((1,) if e == 1 else (1, 2)):
                (folder / f"{modality}-01-{e:02d}-{i:02d}-01-01-{a:02d}{suffix}").write_bytes(b"x" * (a + e))


def test_paper_folds_exactly(tmp_path):
    touch_ravdess(tmp_path)
    corpus = read_ravdess(tmp_path)
    assert corpus.folds == [["02", "05", "14", "15", "16"], ["03", "06", "07", "13", "18"],
                            ["10", "11", "12", "19", "20"], ["08", "17", "21", "23", "24"], ["01", "04", "09", "22"]]
    assert [tuple(int(a) for a in f) for f in corpus.folds] == list(PAPER_FOLDS)
    assert corpus.classes == RAVDESS_EMOTIONS
    assert len(corpus.clips) == 24 * 15


@pytest.mark.parametrize("folds", ["paper", "grouped"])
def test_no_actor_on_both_sides(tmp_path, folds):
    touch_ravdess(tmp_path)
    corpus = read_ravdess(tmp_path, folds=folds, seed=3)
    actors = {c.actor for c in corpus.clips}
    for held_out in corpus.folds:
        train = {c.actor for c in corpus.clips if c.actor not in held_out}
        test = {c.actor for c in corpus.clips if c.actor in held_out}
        assert train and test and not (train & test)
        assert train | test == actors
    assert sorted(a for f in corpus.folds for a in f) == sorted(actors)


def test_grouped_folds_seeded(tmp_path):
    touch_ravdess(tmp_path)
    assert read_ravdess(tmp_path, folds="grouped", seed=1).folds == read_ravdess(tmp_path, folds="grouped", seed=1).folds


def test_name_parsing():
    name = parse_ravdess_name(Path("Actor_12/01-01-03-02-01-01-12.mp4"))
    assert (name.label, name.actor, name.intensity, name.clip_id) == ("happy", "12", "02", "01-03-02-01-01-12")
    assert parse_ravdess_name(Path("03-01-01-01-02-02-07.wav")).label == "neutral"


@pytest.mark.parametrize("bad, why", [
    ("clip.mp4", "MM-VV-EE-II-SS-RR-AA"),
    ("01-01-09-01-01-01-01.mp4", "emotion code 09"),
    ("04-01-01-01-01-01-01.mp4", "modality code 04"),
    ("01-01-01-02-01-01-01.mp4", "intensity 02 for emotion 01"),  # neutral has no strong intensity
    ("01-01-03-01-01-03-01.mp4", "repetition"),
    ("Actor_02/01-01-03-01-01-01-01.mp4", "lies in Actor_02"),
])
def test_bad_names_are_reported_not_guessed(bad, why):
    with pytest.raises(CorpusError) as info:
        parse_ravdess_name(Path(bad))
    assert bad.split("/")[-1] in str(info.value) and why in str(info.value)


def test_bad_names_listed_as_problems(tmp_path):
    touch_ravdess(tmp_path)
    (tmp_path / "Actor_01" / "01-01-3-02-01-01-01.mp4").write_bytes(b"x")
    corpus = read_ravdess(tmp_path)
    assert len(corpus.clips) == 24 * 15
    assert any("01-01-3-02-01-01-01.mp4" in p for p in corpus.problems)
    with pytest.raises(CorpusError, match="01-01-3-02-01-01-01.mp4"):
        read_ravdess(tmp_path, strict=True)


def test_audio_only_and_av_files_of_a_take_are_one_clip(tmp_path):
    touch_ravdess(tmp_path, actors=[1], modality="01", suffix=".mp4")
    touch_ravdess(tmp_path, actors=[1], modality="03", suffix=".wav")
    corpus = read_ravdess(tmp_path, folds=[["01"]])
    assert len(corpus.clips) == 15
    clip = corpus.clips[0]
    assert clip.audio_path.suffix == ".wav" and clip.video_path.suffix == ".mp4"
    assert corpus.modalities == {"speech", "face"}


def test_audio_only_corpus_has_no_face(tmp_path):
    touch_ravdess(tmp_path, modality="03", suffix=".wav")
    corpus = read_ravdess(tmp_path)
    assert corpus.modalities == {"speech"}
    assert all(c.video_path is None for c in corpus.clips)


def test_paper_folds_refuse_a_subset_of_actors(tmp_path):
    touch_ravdess(tmp_path, actors=range(1, 5))
    with pytest.raises(CorpusError, match="grouped"):
        read_ravdess(tmp_path)
    assert len(read_ravdess(tmp_path, folds="grouped", n_folds=4).folds) == 4


def test_check_folds_rejects_overlap():
    from emokit_core.contracts import Clip

    clips = [Clip("a", "01", "happy"), Clip("b", "02", "sad")]
    with pytest.raises(CorpusError, match="actor 01 is held out in folds 0 and 1"):
        check_folds([["01"], ["01", "02"]], clips, "x")
    with pytest.raises(CorpusError, match="in no fold"):
        check_folds([["01"]], clips, "x")


def test_manifest_folds_are_seeded_and_stored(tmp_path):
    rows = ["path,label,speaker"]
    for s in range(6):
        for label in ("happy", "sad", "angry"):
            for i in range(2):
                f = tmp_path / "audio" / f"s{s}_{label}_{i}.wav"
                f.parent.mkdir(exist_ok=True)
                f.write_bytes(b"x")
                rows.append(f"audio/{f.name},{label},spk{s}")
    rows.append("audio/missing.wav,happy,spk0")
    manifest = tmp_path / "corpus.csv"
    manifest.write_text("\n".join(rows) + "\n")
    corpus = read_manifest(manifest, n_folds=3, seed=7)
    assert corpus.classes == ("angry", "happy", "sad")
    assert len(corpus.folds) == 3 and all(len(f) == 2 for f in corpus.folds)
    assert any("missing.wav" in p for p in corpus.problems)
    stored = (tmp_path / "corpus.folds.csv").read_text()
    assert stored.startswith("speaker,fold")
    # The stored folds are data: a different seed later still reads them.
    assert read_manifest(manifest, n_folds=3, seed=99).folds == corpus.folds
    for held_out in corpus.folds:
        assert not ({c.actor for c in corpus.clips if c.actor in held_out}
                    & {c.actor for c in corpus.clips if c.actor not in held_out})


def test_manifest_missing_column(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\nx.wav,happy\n")
    with pytest.raises(CorpusError, match="speaker"):
        read_manifest(manifest)
