"""`emokit report`: every section, embedded images, comparison and attention sections that say
why they cannot show something, escaping, the command, and a headless-Chromium screenshot."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from emokit_core.evaluation import evaluate_run
from emokit_core.registry import Registry
from emokit_core.report import SECTIONS, attended_frames, clip_videos, read_frames, sample_clips, write_report

from .cli import emokit
from .conftest import copy_registry

ROOT = Path(__file__).resolve().parents[1]


class Page(HTMLParser):
    """Section ids, image sources and every src/href of an HTML page."""

    def __init__(self, text: str):
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.references: list[str] = []
        self.tags: set[str] = set()
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self.sections.append(attrs.get("id"))
        if tag == "img":
            self.images.append(attrs["src"])
        self.references += [attrs[k] for k in ("src", "href") if k in attrs]


def decode_png(src: str) -> tuple[bytes, np.ndarray]:
    import cv2

    prefix = "data:image/png;base64,"
    assert src.startswith(prefix), src[:40]
    data = base64.b64decode(src[len(prefix):], validate=True)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "an embedded image does not decode"
    return data, image


def record_attention_run(reg, corpus, *, pipeline="face.stn_bilstm", extra_frames=0) -> int:
    """A finished attention run on ``corpus`` written through the registry API, as the runner
    records face.stn_bilstm: out-of-fold predictions and each fold's ``attention`` artifact with
    one weight per frame of the clip's video (a bump at 60 % of the clip), ``extra_frames`` more
    to stand for a video that changed since the run. Training a real one takes minutes on a
    busy CPU; tests/test_face_frames.py checks that real runs store exactly these artifacts."""
    import av

    from emokit_core.explain import pack_attention

    cid = reg.upsert_corpus(name="tiny", fingerprint="tiny-demo", classes=corpus.classes, n_clips=len(corpus.clips),
                            root=str(corpus.root), reader=corpus.reader,
                            reader_options=corpus.reader_options)
    info = reg.start_run(pipeline=pipeline, modality="face", params={}, config_hash=f"{pipeline}-{extra_frames}",
                         profile="quick", seed=0, corpus_id=cid, folds=corpus.folds, library_versions={}, resume=False)
    classes = list(corpus.classes)
    for fold, actors in enumerate(corpus.folds):
        held = [c for c in corpus.clips if c.actor in actors]
        predictions, attention = [], {}
        for i, clip in enumerate(held):
            label = classes.index(clip.label)
            pred = label if i % 3 else (label + 1) % len(classes)
            predictions.append((clip.id, clip.actor, label, pred, [float(k == pred) for k in range(len(classes))]))
            with av.open(str(clip.video_path)) as container:
                n = container.streams.video[0].frames + extra_frames
            bump = np.exp(-(((np.arange(n) / n) - 0.6) / 0.15) ** 2) + 0.05
            attention[clip.id] = bump / bump.sum()
        reg.record_fold(info.run_id, fold, n_train=len(corpus.clips) - len(held), n_test=len(held), seconds=0.1,
                        scores={"accuracy": float(np.mean([p[2] == p[3] for p in predictions]))},
                        predictions=predictions, artifacts={"attention": pack_attention(attention)})
    reg.finish_run(info.run_id, scores={"accuracy": 0.0}, seconds=1.0)
    return info.run_id


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tone_registry, tiny_demo):
    """Speech, ZeroR and a fusion cross-validated on the tone manifest (a copy of the session's);
    an attention run on a copy of the tiny demo corpus (which a test moves away); and the report
    of all four."""
    from emokit_core.plugins import get_host

    base = tmp_path_factory.mktemp("report")
    corpus = get_host().read_corpus("ravdess", shutil.copytree(tiny_demo, base / "corpus"), folds="grouped")
    db = copy_registry(tone_registry[0], base / "registry")
    reg = Registry(db)
    ids = list(tone_registry[1]) + [record_attention_run(reg, corpus)]
    report = write_report(reg, ids, base / "out" / "report.html", samples=2)
    yield {"reg": reg, "ids": ids, "report": report, "corpus": corpus, "db": db, "base": base}
    reg.close()


def test_every_section_is_present_and_every_image_embedded(runs):
    report, ids = runs["report"], runs["ids"]
    text = report.html.read_text(encoding="utf-8")
    page = Page(text)
    assert page.sections == [key for key, _ in SECTIONS]
    # self-contained: images inline, no scripts, stylesheets or other files to fetch
    assert not page.tags & {"script", "link", "iframe"}
    assert all(ref.startswith(("data:image/png;base64,", "#")) for ref in page.references)
    on_disk = {p.name: p.read_bytes() for p in report.files_dir.glob("*.png")}
    expected = ({f"confusion_run{i}.png" for i in ids} | {f"fold_accuracy_runs{'_'.join(map(str, ids))}.png",
                f"per_class_f1_runs{'_'.join(map(str, ids))}.png"}
                | {f"attention_run{ids[3]}_sample{k}.png" for k in (1, 2)})
    assert set(on_disk) == expected and report.files_dir == report.html.with_name("report_files")
    assert len(page.images) == len(expected)
    for src in page.images:
        data, image = decode_png(src)
        assert data in on_disk.values()  # the folder holds the very same PNGs
        assert image.shape[0] > 150 and image.shape[1] > 300 and image.std() > 10


def test_result_table_agrees_with_evaluate(runs):
    text = runs["report"].html.read_text(encoding="utf-8")
    results = text.split('<section id="results">')[1].split("</section>")[0]
    for run_id in runs["ids"]:
        ev = evaluate_run(runs["reg"], run_id)
        assert ev.run.ref in results
        assert f"<b>{100 * ev.accuracy:.2f}</b> ± {100 * ev.ci95:.2f}" in results
    assert f"speech.mfcc_svm: run {runs['ids'][0]}, speech.zeror: run {runs['ids'][1]}" in results  # fusion inputs


def test_comparison_tests_within_a_corpus_and_says_why_not_across(runs):
    text = runs["report"].html.read_text(encoding="utf-8")
    section = text.split('<section id="comparison">')[1].split("</section>")[0]
    assert "Cochran's Q = " in section and section.count("<tr>") >= 3 + 1 + 3 + 1  # 3 runs, 3 pairs
    assert "2 different corpora" in section and f"runs {runs['ids'][3]}" in section
    assert f"Only run {runs['ids'][3]}: face.stn_bilstm@1 is on this corpus here" in section


def test_attention_samples_show_frames_of_the_clip(runs):
    reg, face_id = runs["reg"], runs["ids"][3]
    from emokit_core.explain import attention_weights

    attention = attention_weights(reg, face_id)
    run = reg.get_run(face_id)
    picked = sample_clips(attention, reg.predictions(face_id), run.corpus.classes, 2)
    labels = {p.clip_id: p.label for p in reg.predictions(face_id)}
    assert len(picked) == 2 and labels[picked[0]] != labels[picked[1]]  # spread over classes
    assert (run.corpus.reader, run.corpus.reader_options) == ("ravdess", {"folds": "grouped"})
    videos, unreadable = clip_videos(run.corpus)  # read again as it was read: with its grouped folds
    video = videos[picked[0]]
    assert unreadable is None and video.parent.parent == runs["corpus"].root
    assert video == next(c.video_path for c in runs["corpus"].clips if c.id == picked[0])
    wanted = list(attended_frames(attention[picked[0]]))
    fps, n_frames, thumbnails = read_frames(video, wanted)
    assert fps == pytest.approx(30) and n_frames == len(attention[picked[0]])
    assert sorted(thumbnails) == wanted and len(wanted) == 4
    assert all(t.shape[0] == 150 and t.shape[2] == 3 and t.std() > 10 for t in thumbnails.values())
    # the most-attended frames are shown, with their times in seconds
    assert int(np.argmax(attention[picked[0]])) in wanted
    text = runs["report"].html.read_text(encoding="utf-8")
    section = text.split('<section id="attention">')[1].split("</section>")[0]
    assert f"clip {picked[0]}: true " in section and "frames at 30 fps" in section
    assert "class=\"note\"" not in section  # every video was found and matched its frames
    assert "None of these runs records attention" not in section


def test_missing_media_is_said_in_the_attention_section(runs, tmp_path):
    corpus, face_id = runs["corpus"].root, runs["ids"][3]
    with_frames = runs["report"].files_dir / f"attention_run{face_id}_sample1.png"
    moved = corpus.with_name("corpus-moved")
    corpus.rename(moved)
    try:
        report = write_report(runs["reg"], [face_id], tmp_path / "gone.html", samples=1)
    finally:
        moved.rename(corpus)
    text = report.html.read_text(encoding="utf-8")
    assert "its video is not under the corpus root" in text and "frames are not shown" in text
    assert report.notes and "not under the corpus root" in report.notes[0]
    import cv2

    plain = cv2.imread(str(report.files_dir / f"attention_run{face_id}_sample1.png"))
    assert plain.shape[0] < 0.8 * cv2.imread(str(with_frames)).shape[0]  # the curve alone, no thumbnails
    assert "One run: there is nothing to compare" in text


def test_a_video_that_changed_since_the_run_is_said(runs, tmp_path):
    changed = record_attention_run(runs["reg"], runs["corpus"], extra_frames=5)
    report = write_report(runs["reg"], [runs["ids"][3], changed], tmp_path / "changed.html", samples=1)
    text = report.html.read_text(encoding="utf-8")
    attention = text.split('<section id="attention">')[1].split("</section>")[0]
    assert attention.count('class="note"') == 1 and "the video changed since the run" in attention
    now, attended = re.search(r"now has (\d+) frames but the run attended over (\d+)", attention).groups()
    assert int(attended) == int(now) + 5 > 80
    comparison = text.split('<section id="comparison">')[1].split("</section>")[0]
    assert "McNemar" in comparison and "Cochran's Q = " not in comparison  # two runs on the same clips


def record(reg, corpus_id, pipeline, clips, folds, classes):
    """A finished run written straight into the registry; ``clips``: (clip_id, actor, fold, label, pred)."""
    info = reg.start_run(pipeline=pipeline, modality="speech", params={"odd": "<v>"}, config_hash=pipeline,
                         profile="quick", seed=0, corpus_id=corpus_id, folds=folds, library_versions={},
                         resume=False)
    for fold in range(len(folds)):
        held = [c for c in clips if c[2] == fold]
        reg.record_fold(info.run_id, fold, n_train=len(clips) - len(held), n_test=len(held), seconds=0.1,
                        scores={"accuracy": float(np.mean([c[3] == c[4] for c in held]))},
                        predictions=[(c[0], c[1], c[3], c[4], [float(k == c[4]) for k in range(len(classes))])
                                     for c in held])
    reg.finish_run(info.run_id, scores={"accuracy": float(np.mean([c[3] == c[4] for c in clips]))}, seconds=1.0)
    return info.run_id


def test_odd_names_are_escaped_and_runs_on_other_clips_are_not_compared(tmp_path):
    classes = ["<b>bold</b>", "a&b", "it's \"q\""]
    reg = Registry(tmp_path / "r.db")
    cid = reg.upsert_corpus(name="<script>alert(1)</script>", fingerprint="fp", classes=classes, n_clips=12,
                            root="/nowhere")
    clips = [(f"c{i}", f"s{i % 2}", i % 2, i % 3, (i * 2) % 3) for i in range(12)]
    a = record(reg, cid, "speech.odd<&>", clips, [["s0"], ["s1"]], classes)
    b = record(reg, cid, "speech.other", clips[:10], [["s0"], ["s1"]], classes)
    report = write_report(reg, [a, b], tmp_path / "odd.html")
    reg.close()
    text = report.html.read_text(encoding="utf-8")
    assert "<script" not in text and "<b>bold" not in text and "speech.odd<&>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "speech.odd&lt;&amp;&gt;@1" in text
    assert "&lt;b&gt;bold&lt;/b&gt;" in text and "a&amp;b" in text and "&quot;q&quot;" in text
    assert "&quot;odd&quot;: &quot;&lt;v&gt;&quot;" in text  # parameters in the run details
    Page(text)  # still parses
    section = text.split('<section id="comparison">')[1].split("</section>")[0]
    assert f"No test between runs {a}, {b}" in section and "not on the same clips" in section
    assert any("not on the same clips" in n for n in report.notes)
    assert "None of these runs records attention" in text


def test_clip_videos_come_from_the_recorded_reader(tmp_path, tone_manifest):
    from emokit_core.plugins import get_host
    from emokit_core.registry.records import CorpusRecord

    corpus = get_host().read_corpus("manifest", tone_manifest)
    assert corpus.reader == "manifest"
    record = CorpusRecord(id=1, name="tones", fingerprint="f", classes=list(corpus.classes), n_clips=len(corpus.clips),
                          root=str(tone_manifest), reader="manifest", reader_options={})
    videos, unreadable = clip_videos(record)
    assert unreadable is None and videos == {c.id: c.video_path for c in corpus.clips if c.video_path is not None}
    # no reader recorded (a registry from before 0004), a reader that is not installed, no root
    _, why = clip_videos(dataclasses.replace(record, reader=None))
    assert "does not say which reader read corpus tones" in why and "rerun" in why
    _, why = clip_videos(dataclasses.replace(record, reader="nosuchreader"))
    assert "cannot be read again" in why and "nosuchreader" in why
    assert clip_videos(dataclasses.replace(record, root=str(tmp_path / "gone"))) == ({}, None)


def test_sample_clips_round_robin_over_classes():
    attention = {c: np.ones(3) / 3 for c in ("a1", "a2", "a3", "b1", "c1", "c2", "x")}
    # (clip, true, predicted): a1, a3, c2 right; a2, b1, c1 wrong; "nope" has no attention
    from emokit_core.registry.records import PredictionRecord

    predictions = [PredictionRecord(c, "s", 0, label, pred, []) for c, label, pred in (
        ("c2", 2, 2), ("a2", 0, 1), ("b1", 1, 0), ("c1", 2, 0), ("a1", 0, 0), ("a3", 0, 0), ("nope", 1, 1))]
    # right a1, wrong b1 (its only clip), right c2; then wrong a2, c1 (wrong), then a3
    assert sample_clips(attention, predictions, ["a", "b", "c"], 4) == ["a1", "b1", "c2", "a2"]
    assert sample_clips(attention, predictions, ["a", "b", "c"], 10) == ["a1", "b1", "c2", "a2", "c1", "a3"]
    assert sample_clips(attention, predictions, ["a", "b", "c"], 0) == []
    assert attended_frames([0.1, 0.5, 0.05, 0.2, 0.15]) == {1: "most", 2: "least", 3: "most", 4: "most"}
    assert attended_frames([0.6, 0.4]) == {0: "most", 1: "most"}
    # 20 frames peaking at 10: the most-attended frames are at least 2 frames apart, not 9, 10, 11
    peak = np.exp(-((np.arange(20) - 10) / 4.0) ** 2) + np.arange(20) * 1e-4
    assert attended_frames(peak / peak.sum()) == {0: "least", 8: "most", 10: "most", 12: "most"}


def test_report_command(runs, tmp_path):
    db, ids = str(runs["db"]), runs["ids"]
    result = emokit("report", str(ids[0]), "speech.zeror@1", str(ids[3]), "--registry", db, "--samples", "1",
                    "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    name = f"emokit-report-{ids[0]}-{ids[1]}-{ids[3]}"
    assert summary["html"] == f"{name}.html" and (tmp_path / summary["html"]).is_file()
    assert summary["files_dir"] == f"{name}_files" and summary["notes"] == [
        f"These runs are on 2 different corpora (manifest: runs {ids[0]}, {ids[1]}; tiny: runs {ids[3]}); "
        "runs are only tested within a corpus."]
    assert len(summary["images"]) == 6 and all((tmp_path / p).is_file() for p in summary["images"])  # 3 + 2 + 1
    assert re.search(r"frames of clip \S+ \(01-\S+\.mp4\)", result.stderr)  # progress on stderr
    missing = emokit("report", "999", "--registry", db)
    assert missing.returncode != 0 and missing.stderr.splitlines()[0] == f"error: no run 999 in the registry {db}"


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="no chromium binary on PATH (Debian: apt-get install chromium): cannot render the report")
def test_headless_chromium_renders_a_report_that_is_not_blank(runs, tmp_path):
    import cv2

    shot = tmp_path / "shot.png"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "render_report.py"), str(runs["report"].html),
                             "--png", str(shot), "--height", "3000"], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    image = cv2.imread(str(shot))
    assert image.shape[:2] == (3000, 1280)
    inked = (image <= 245).any(axis=2)
    assert inked.mean() > 0.05  # tables and plots, not an empty page
    assert inked[2000:].mean() > 0.02  # the embedded images render further down the page too
    assert len(np.unique((image >> 3).reshape(-1, 3), axis=0)) > 64  # the plots' colours, not only text
