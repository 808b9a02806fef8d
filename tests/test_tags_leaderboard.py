"""Run tags (migration 0003), the leaderboard views and `emokit leaderboard` / `emokit runs --tag`;
those that take ``registry_url`` on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from emokit_core.errors import RegistryError
from emokit_core.registry import Registry

from .cli import emokit

FOLDS = [["01", "02"], ["03", "04"]]
CLASSES = ["neutral", "happy", "sad"]


def _reg(tmp_path: Path, url: str | None = None) -> Registry:
    return Registry(url or tmp_path / "registry.db", artifact_root=tmp_path / "registry.artifacts")


def _start(reg: Registry, pipeline: str = "speech.mfcc_svm", params=None, config_hash="cfg-1", corpus="demo"):
    cid = reg.upsert_corpus(name=corpus, fingerprint="fp", classes=CLASSES, n_clips=8, root="/data")
    return reg.start_run(pipeline=pipeline, modality=pipeline.split(".")[0].replace("fuse", "fusion"),
                         params=params or {"C": 1.0}, config_hash=config_hash, profile="quick", seed=0,
                         corpus_id=cid, folds=FOLDS, library_versions={}, resume=False)


def _finish(reg: Registry, run_id: int, fold_accuracies: tuple[float, float]) -> None:
    """Two folds of four clips: fold f gets round(4 * accuracy) clips right."""
    for fold, acc in enumerate(fold_accuracies):
        right = round(4 * acc)
        preds = [(f"c{fold}{i}", FOLDS[fold][i % 2], i % 3, i % 3 if i < right else (i + 1) % 3, [1 / 3] * 3)
                 for i in range(4)]
        reg.record_fold(run_id, fold, n_train=4, n_test=4, seconds=0.1,
                        scores={"accuracy": acc, "macro_f1": acc}, predictions=preds)
    pooled = sum(fold_accuracies) / 2
    reg.finish_run(run_id, scores={"accuracy": pooled, "ci95": 0.1, "macro_f1": pooled - 0.1, "uar": pooled - 0.05,
                                   "zeror_accuracy": 0.375}, seconds=1.0)


# ----------------------------------------------------------------------------- tags


def test_tags_are_set_updated_read_and_filtered(registry_url, tmp_path):
    reg = _reg(tmp_path, registry_url)
    a, b = _start(reg).run_id, _start(reg).run_id
    reg.set_tags(a, {"grid": "fusion", "fuser": "svm_linear"})
    reg.set_tags(b, {"grid": "fusion", "fuser": "logreg"})
    reg.set_tags(a, {"fuser": "svm_rbf", "C": 0.01})  # upsert; values stored as text
    assert reg.get_run(a).tags == {"C": "0.01", "fuser": "svm_rbf", "grid": "fusion"}
    assert reg.get_run(b).tags == {"fuser": "logreg", "grid": "fusion"}
    assert [r.run_id for r in reg.list_runs(tag="grid")] == [b, a]
    assert [r.run_id for r in reg.list_runs(tag="fuser=logreg")] == [b]
    assert reg.list_runs(tag="fuser=svm_linear") == []
    assert reg.list_runs(tag="C=0.01")[0].tags["fuser"] == "svm_rbf"
    assert reg.list_runs(tag="grid=")  == []  # an empty value is a value, not "any"
    with pytest.raises(RegistryError, match="no run 99"):
        reg.set_tags(99, {"k": "v"})
    with pytest.raises(RegistryError, match="bad tag key"):
        reg.set_tags(a, {"a=b": "v"})
    with pytest.raises(RegistryError, match="bad tag filter"):
        reg.list_runs(tag="=x")
    reg.close()


def test_tags_go_with_their_run(registry_url, tmp_path):
    reg = _reg(tmp_path, registry_url)
    run_id = _start(reg).run_id
    reg.set_tags(run_id, {"k": "v"})
    with reg.engine.begin() as conn:
        if registry_url.startswith("sqlite"):
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.exec_driver_sql("DELETE FROM model_versions")  # cascades to runs, then to run_tags
    with reg.engine.connect() as conn:
        assert conn.exec_driver_sql("select count(*) from run_tags").scalar() == 0
    reg.close()


def _alembic(db: Path, action: str, revision: str) -> None:
    from alembic import command
    from sqlalchemy import create_engine

    from emokit_core.registry.engine import alembic_config

    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        getattr(command, action)(alembic_config(conn), revision)
    engine.dispose()


def test_upgrade_from_0002_keeps_runs_and_downgrade_restores_the_old_views(tmp_path):
    db = tmp_path / "registry.db"
    _alembic(db, "upgrade", "0002")
    with sqlite3.connect(db) as con:
        con.execute("insert into corpora (name, fingerprint, classes, n_clips, root, created_at) "
                    "values ('old', 'fp', '[\"a\"]', 1, '/x', '2026-01-01 00:00:00')")
    con.close()
    reg = Registry(db)  # opens at 0002, upgrades to the head
    run_id = _start(reg).run_id
    _finish(reg, run_id, (0.5, 1.0))
    reg.set_tags(run_id, {"k": "v"})
    reg.close()
    with sqlite3.connect(db) as con:
        assert con.execute("select version_num from alembic_version").fetchall() == [("0005",)]
        assert con.execute("select name, reader from corpora order by id").fetchall() == [("old", None), ("demo", None)]
        assert con.execute("select uar, fold_mean from leaderboard").fetchall() == [(0.7, 0.75)]
        assert con.execute("select fold_count, fold_sum_sq from finished_runs").fetchall() == [(2, 0.125)]
    con.close()

    _alembic(db, "downgrade", "0003")
    with sqlite3.connect(db) as con:
        assert "reader" not in [d[0] for d in con.execute("select * from corpora").description]
        assert "fold_sum_sq" not in [d[0] for d in con.execute("select * from finished_runs").description]
        assert con.execute("select uar, fold_mean from leaderboard").fetchall() == [(0.7, 0.75)]
    con.close()

    _alembic(db, "downgrade", "0002")
    with sqlite3.connect(db) as con:
        names = {r[0] for r in con.execute("select name from sqlite_master where type in ('table', 'view')")}
        assert "run_tags" not in names and {"leaderboard", "finished_runs"} <= names
        columns = [d[0] for d in con.execute("select * from leaderboard").description]
        assert "uar" not in columns and "accuracy" in columns
        assert con.execute("select model, accuracy from leaderboard").fetchall() == [("speech.mfcc_svm", 0.75)]
    con.close()
    Registry(db).close()  # and up again
    with sqlite3.connect(db) as con:
        assert con.execute("select version_num from alembic_version").fetchall() == [("0005",)]
    con.close()


# ----------------------------------------------------------------------------- leaderboard


def _board(tmp_path: Path, url: str | None = None) -> dict[str, int]:
    """Two versions of speech.mfcc_svm that differ only in augmentation, one face model, one unfinished run."""
    reg = _reg(tmp_path, url)
    ids = {}
    for name, pipeline, params, folds in (
        ("plain", "speech.mfcc_svm", {"C": 1.0, "augment": "none"}, (0.5, 0.75)),
        ("augmented", "speech.mfcc_svm", {"C": 1.0, "augment": "specaugment"}, (0.75, 1.0)),
        ("face", "face.pixels_vote", {"size": 24}, (0.25, 0.5)),
    ):
        ids[name] = _start(reg, pipeline, params=params, config_hash=f"hash-{name}").run_id
        _finish(reg, ids[name], folds)
    ids["running"] = _start(reg, "speech.mfcc_svm", params={"C": 9.0, "augment": "none"}, config_hash="h9").run_id
    reg.set_tags(ids["augmented"], {"study": "augment"})
    reg.set_tags(ids["plain"], {"study": "augment"})
    reg.close()
    return ids


def test_leaderboard_views(registry_url, tmp_path):
    from sqlalchemy import create_engine, text

    ids = _board(tmp_path, registry_url)
    engine = create_engine(registry_url)
    con = engine.connect()
    rows = [dict(r) for r in con.execute(text("select * from leaderboard")).mappings()]
    assert [(r["model"], r["version"], r["run_id"]) for r in rows] == [
        ("speech.mfcc_svm", 2, ids["augmented"]), ("face.pixels_vote", 1, ids["face"])]
    top = rows[0]
    assert (top["accuracy"], top["ci95"], top["macro_f1"], top["uar"], top["zeror_accuracy"]) == (
        0.875, 0.1, 0.775, 0.825, 0.375)
    assert (top["fold_mean"], top["fold_min"], top["fold_max"], top["n_folds"], top["n_clips"]) == (0.875, 0.75, 1.0, 2, 8)
    assert top["config_hash"] == "hash-augmented" and top["corpus_fingerprint"] == "fp"
    every = con.execute(text("select model, version, config_hash from finished_runs order by run_id")).all()
    assert [tuple(r) for r in every] == [("speech.mfcc_svm", 1, "hash-plain"), ("speech.mfcc_svm", 2, "hash-augmented"),
                                        ("face.pixels_vote", 1, "hash-face")]
    con.close()
    engine.dispose()


def test_leaderboard_api_best_and_all_versions(registry_url, tmp_path):
    ids = _board(tmp_path, registry_url)
    reg = _reg(tmp_path, registry_url)
    best = reg.leaderboard()
    assert [(r.model, r.run_id) for r in best] == [("speech.mfcc_svm", ids["augmented"]),
                                                          ("face.pixels_vote", ids["face"])]
    top = best[0]
    assert top.fold_mean == pytest.approx(0.875) and top.fold_std == pytest.approx(0.25 / 2 ** 0.5)
    assert top.uar == pytest.approx(0.825) and top.tags == {"study": "augment"}
    assert top.differs == {"augment": "specaugment"} and best[1].differs == {}
    every = reg.leaderboard(all_versions=True, modality="speech")
    assert [(r.version, r.config_hash, r.differs) for r in every] == [
        (2, "hash-augmented", {"augment": "specaugment"}), (1, "hash-plain", {"augment": "none"})]
    assert [r.run_id for r in reg.leaderboard(all_versions=True, tag="study")] == [ids["augmented"], ids["plain"]]
    assert reg.leaderboard(tag="study=other") == []
    by_uar = reg.leaderboard(metric="uar", all_versions=True)
    assert [r.value for r in by_uar] == pytest.approx([0.825, 0.575, 0.325])
    reg.close()


def test_leaderboard_and_tags_on_the_command_line(registry_url, tmp_path):
    ids = _board(tmp_path, registry_url)
    db = registry_url
    text = emokit("leaderboard", "--all-versions", "--corpus", "demo", "--registry", db)
    assert text.returncode == 0, text.stderr
    lines = [line for line in text.stdout.splitlines() if "speech.mfcc_svm" in line]
    assert len(lines) == 2 and "hash-augme" in lines[0] and "augment='specaugment'" in lines[0]
    assert "hash-plain" in lines[1] and "augment='none'" in lines[1] and "C=" not in text.stdout
    assert "87.50 ± 17.68" in lines[0]  # per-fold mean ± sd
    board = json.loads(emokit("leaderboard", "--registry", db, "--json", "--tag", "study").stdout)
    assert [r["run_id"] for r in board] == [ids["augmented"]]
    shown = emokit("runs", "show", str(ids["plain"]), "--registry", db)
    assert shown.returncode == 0 and "study=augment" in shown.stdout
    tagged = json.loads(emokit("runs", "--tag", "study=augment", "--registry", db, "--json").stdout)
    assert [r["run_id"] for r in tagged] == [ids["augmented"], ids["plain"]]
    assert tagged[0]["corpus"]["name"] == "demo" and tagged[0]["ref"] == "speech.mfcc_svm@2"  # one shape


def test_the_views_work_from_the_sqlite3_shell(tmp_path):
    import shutil

    if shutil.which("sqlite3") is None:
        pytest.skip("no sqlite3 shell on this machine")
    ids = _board(tmp_path)
    out = subprocess.run(["sqlite3", str(tmp_path / "registry.db"), "select run_id, model, uar from leaderboard"],
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [f"{ids['augmented']}|speech.mfcc_svm|0.825", f"{ids['face']}|face.pixels_vote|0.325"]
