"""The registry: schema & migrations, runs round trip, versions, resume, artifacts, views.

Every test that takes ``registry_url`` runs once on SQLite and once on PostgreSQL (a database of
its own on a real server: tests/conftest.py)."""

from __future__ import annotations

import hashlib
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emokit_core.errors import ArtifactCorruptedError, RegistryError, SchemaTooNewError
from emokit_core.registry import Registry, default_registry_url

FOLDS = [["01", "02"], ["03", "04"]]
CLASSES = ["neutral", "happy", "sad"]


HEAD = "0005"


def _reg(url: str, tmp_path: Path) -> Registry:
    return Registry(url, artifact_root=tmp_path / "registry.artifacts")


def _sql(url: str, statement: str, **params) -> list[tuple]:
    """``statement`` run on the registry's database directly (as another client would), committed."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def _corpus(reg: Registry, fingerprint: str = "fp1") -> int:
    return reg.upsert_corpus(name="demo", fingerprint=fingerprint, classes=CLASSES, n_clips=8, root="/data/demo")


def _start(reg: Registry, corpus_id: int, pipeline: str = "speech.mfcc_svm", **kw):
    args = dict(
        pipeline=pipeline,
        modality=pipeline.split(".")[0].replace("fuse", "fusion"),
        params={"C": 1.0, "kernel": "rbf"},
        config_hash="cfg-1",
        profile="quick",
        seed=0,
        corpus_id=corpus_id,
        folds=FOLDS,
        library_versions={"emokit": "0.1.0", "sklearn": "1.5"},
        weights={"init": "random"},
        command="emokit run " + pipeline,
    )
    args.update(kw)
    return reg.start_run(**args)


def _preds(fold: int, correct: int = 4):
    actors = FOLDS[fold]
    out = []
    for i in range(4):
        label = i % 3
        pred = label if i < correct else (label + 1) % 3
        probs = [0.1, 0.1, 0.1]
        probs[pred] = 0.8
        out.append((f"clip-{fold}-{i}", actors[i % 2], label, pred, probs))
    return out


def _complete(reg: Registry, run_id: int, acc: float, *, artifacts=True) -> None:
    for fold in (0, 1):
        reg.record_fold(
            run_id, fold, n_train=4, n_test=4, seconds=0.5,
            scores={"accuracy": acc, "macro_f1": acc - 0.05},
            predictions=_preds(fold),
            artifacts={"model": f"model-{run_id}-{fold}".encode()} if artifacts else {},
        )
    reg.finish_run(run_id, scores={"accuracy": acc, "ci95": 0.02, "macro_f1": acc - 0.05}, seconds=1.0)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- schema


def test_fresh_schema_is_created(registry_url, tmp_path):
    from sqlalchemy import inspect

    reg = _reg(registry_url, tmp_path)
    inspector = inspect(reg.engine)
    names = set(inspector.get_table_names()) | set(inspector.get_view_names())
    assert {
        "corpora", "models", "model_versions", "runs", "run_inputs", "fold_results", "scores",
        "predictions", "artifacts", "run_artifacts", "alembic_version", "leaderboard", "finished_runs",
    } <= names
    reg.close()
    assert _sql(registry_url, "select version_num from alembic_version") == [(HEAD,)]
    if registry_url.startswith("sqlite"):
        assert _sql(registry_url, "pragma journal_mode") == [("wal",)]
    assert reg.artifacts.root == tmp_path / "registry.artifacts"


def test_reopen_is_idempotent(registry_url, tmp_path):
    reg = _reg(registry_url, tmp_path)
    cid = _corpus(reg)
    info = _start(reg, cid)
    reg.close()
    for _ in range(2):
        reg = _reg(registry_url, tmp_path)
        assert reg.get_run(info.run_id).status == "running"
        assert _corpus(reg) == cid  # upsert finds the same corpus
        reg.close()
    assert _sql(registry_url, "select version_num from alembic_version") == [(HEAD,)]
    assert _sql(registry_url, "select count(*) from corpora") == [(1,)]


def test_models_match_migrations(registry_url, tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from emokit_core.registry.schema import Base

    reg = _reg(registry_url, tmp_path)
    with reg.engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_object": lambda o, n, t, r, c: not (t == "table" and n in ("leaderboard", "finished_runs")),
            },
        )
        assert compare_metadata(ctx, Base.metadata) == []
    reg.close()


def test_foreign_keys_are_enforced(registry_url, tmp_path):
    reg = _reg(registry_url, tmp_path)
    with pytest.raises(RegistryError, match="no corpus"):
        _start(reg, corpus_id=999)
    if registry_url.startswith("sqlite"):  # PostgreSQL always enforces them; SQLite only when asked
        with reg.engine.connect() as conn:
            assert conn.exec_driver_sql("pragma foreign_keys").scalar() == 1
    reg.close()


def test_default_registry_url(monkeypatch, tmp_path):
    monkeypatch.delenv("EMOKIT_REGISTRY", raising=False)
    assert default_registry_url() == "sqlite:///./registry.db"
    assert default_registry_url("postgresql://h/db") == "postgresql://h/db"
    assert default_registry_url(tmp_path / "x.db") == f"sqlite:///{tmp_path / 'x.db'}"
    monkeypatch.setenv("EMOKIT_REGISTRY", "runs/reg.db")
    assert default_registry_url() == "sqlite:///runs/reg.db"
    assert default_registry_url("sqlite:///other.db") == "sqlite:///other.db"
    monkeypatch.chdir(tmp_path)
    reg = Registry()  # EMOKIT_REGISTRY, a bare relative path; folder created
    assert reg.file == tmp_path / "runs" / "reg.db" and reg.file.exists()
    assert reg.artifacts.root == tmp_path / "runs" / "reg.artifacts"
    reg.close()


def test_import_is_light():
    code = (
        "import sys, emokit_core.registry as r; r.default_registry_url();"
        "bad = [m for m in ('torch', 'numpy', 'sqlalchemy', 'alembic') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


# ----------------------------------------------------------------------------- runs


def test_round_trip(registry_url, tmp_path):
    reg = _reg(registry_url, tmp_path)
    cid = _corpus(reg)
    info = _start(reg, cid)
    assert (info.model, info.version, info.resumed, info.finished_folds) == ("speech.mfcc_svm", 1, False, frozenset())
    _complete(reg, info.run_id, 0.75)
    assert reg.finished_folds(info.run_id) == {0, 1}

    run = reg.get_run(info.run_id)
    assert run.model == "speech.mfcc_svm" and run.modality == "speech" and run.version == 1
    assert run.status == "finished" and run.seconds == 1.0 and run.error is None
    assert run.params == {"C": 1.0, "kernel": "rbf"} and run.profile == "quick" and run.seed == 0
    assert run.folds == FOLDS and run.weights == {"init": "random"}
    assert run.library_versions["sklearn"] == "1.5"
    assert run.corpus.classes == CLASSES and run.corpus.name == "demo"
    assert run.started_at.tzinfo is not None and run.finished_at >= run.started_at
    assert run.scores == {"accuracy": 0.75, "ci95": 0.02, "macro_f1": 0.7}
    assert [f.fold for f in run.fold_results] == [0, 1]
    assert run.fold_results[1].held_out == FOLDS[1]
    assert run.fold_results[0].scores == {"accuracy": 0.75, "macro_f1": 0.7}
    assert {(a.fold, a.name) for a in run.artifacts} == {(0, "model"), (1, "model")}
    assert all(Path(a.path).is_file() for a in run.artifacts)

    preds = reg.predictions(info.run_id)
    assert len(preds) == 8 and [p.clip_id for p in preds] == sorted(p.clip_id for p in preds)
    p0 = preds[0]
    assert p0.as_dict() == {"clip_id": "clip-0-0", "actor": "01", "fold": 0, "label": 0, "pred": 0, "probs": [0.8, 0.1, 0.1]}

    assert reg.fold_artifact(info.run_id, 1, "model") == f"model-{info.run_id}-1".encode()
    with pytest.raises(RegistryError, match="no such artifact"):
        reg.fold_artifact(info.run_id, 1, "nope")
    with pytest.raises(RegistryError, match="emokit runs"):
        reg.get_run(12345)

    listed = reg.list_runs(corpus="demo")
    assert [r.run_id for r in listed] == [info.run_id] and listed[0].accuracy == 0.75
    assert reg.list_runs(status="running") == []
    assert reg.latest_run("speech.mfcc_svm").run_id == info.run_id
    assert reg.latest_run("speech.mfcc_svm@1").run_id == info.run_id
    with pytest.raises(RegistryError):
        reg.latest_run("speech.mfcc_svm", 7)
    reg.close()


def test_artifacts_are_deduplicated_and_atomic(registry_url, tmp_path):
    reg = _reg(registry_url, tmp_path)
    sha = reg.put_artifact(b"same bytes")
    assert reg.put_artifact(b"same bytes") == sha == hashlib.sha256(b"same bytes").hexdigest()
    path = reg.artifacts.path(sha)
    assert path == tmp_path / "registry.artifacts" / sha[:2] / sha
    assert reg.get_artifact(sha) == b"same bytes"
    assert [p.name for p in path.parent.iterdir()] == [sha]  # no temp files left
    reg.close()


def test_versions_increment(registry_url, tmp_path):
    reg = _reg(registry_url, tmp_path)
    cid = _corpus(reg)
    a1 = _start(reg, cid)
    _complete(reg, a1.run_id, 0.6)
    a2 = _start(reg, cid)  # same config, but v1 is finished: a new version
    b1 = _start(reg, cid, pipeline="face.hog_svm")
    a3 = _start(reg, cid, config_hash="cfg-2", resume=False)
    assert (a1.version, a2.version, b1.version, a3.version) == (1, 2, 1, 3)
    assert not a2.resumed and len({a1.run_id, a2.run_id, b1.run_id, a3.run_id}) == 4
    reg.close()


def _start_many(url: str, n: int, q) -> None:
    reg = Registry(url, artifact_root=Path(q.artifacts))
    cid = _corpus(reg)
    started = []
    for i in range(n):
        info = _start(reg, cid, resume=False)
        _complete(reg, info.run_id, 0.5 + i / 100)  # folds, predictions and artifacts written too
        started.append(info.version)
    q.put(started)
    reg.close()


class _Queue:
    """A multiprocessing queue that also carries the artifact root to the writers."""

    def __init__(self, ctx, artifacts: Path):
        self.queue, self.artifacts = ctx.Queue(), str(artifacts)

    def put(self, item):
        self.queue.put(item)

    def get(self, timeout):
        return self.queue.get(timeout=timeout)


def test_eight_processes_writing_runs_at_once_lose_and_duplicate_nothing(registry_url, tmp_path):
    _reg(registry_url, tmp_path).close()
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    q = _Queue(ctx, tmp_path / "registry.artifacts")
    procs = [ctx.Process(target=_start_many, args=(registry_url, 3, q)) for _ in range(8)]
    for p in procs:
        p.start()
    versions = [v for _ in procs for v in q.get(timeout=120)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0  # no deadlock, no error
    assert sorted(versions) == list(range(1, 25))
    assert _sql(registry_url, "select count(*), count(distinct model_version_id) from runs where status = 'finished'") \
        == [(24, 24)]
    assert _sql(registry_url, "select count(*) from fold_results") == [(48,)]
    assert _sql(registry_url, "select count(*), count(distinct run_id || '/' || clip_id) from predictions") == [(192, 192)]
    assert _sql(registry_url, "select count(*) from corpora") == [(1,)]


def test_resume_returns_finished_folds(registry_url, tmp_path):
    reg = _reg(registry_url, tmp_path)
    cid = _corpus(reg)
    info = _start(reg, cid)
    reg.record_fold(info.run_id, 0, n_train=4, n_test=4, seconds=0.1, scores={"accuracy": 0.5},
                    predictions=_preds(0), artifacts={"model": b"m0"})
    reg.fail_run(info.run_id, "KeyboardInterrupt", status="interrupted")
    assert reg.get_run(info.run_id).status == "interrupted"

    again = _start(reg, cid)
    assert again.resumed and again.run_id == info.run_id and again.version == 1
    assert again.finished_folds == {0}
    run = reg.get_run(info.run_id)
    assert run.status == "running" and run.error is None
    with pytest.raises(RegistryError, match="already recorded"):
        reg.record_fold(info.run_id, 0, n_train=4, n_test=4, seconds=0.1, scores={}, predictions=[], artifacts={})
    with pytest.raises(RegistryError, match=r"folds \[1\] are not recorded"):
        reg.finish_run(info.run_id, scores={"accuracy": 0.5}, seconds=1)
    reg.record_fold(info.run_id, 1, n_train=4, n_test=4, seconds=0.1, scores={"accuracy": 1.0},
                    predictions=_preds(1), artifacts={"model": b"m1"})
    reg.finish_run(info.run_id, scores={"accuracy": 0.75}, seconds=1)
    reg.fail_run(info.run_id, "late error")  # a finished run stays finished
    assert reg.get_run(info.run_id).status == "finished"

    # a different seed, folds, weights or resume=False never resumes
    failed = _start(reg, cid, seed=1)
    reg.fail_run(failed.run_id, "boom")
    assert not _start(reg, cid, seed=1, folds=[["01"], ["02", "03", "04"]]).resumed
    assert not _start(reg, cid, seed=1, weights={"name": "cnn14", "sha256": "ab"}).resumed
    assert not _start(reg, cid, seed=1, resume=False).resumed
    assert _start(reg, cid, seed=1).run_id == failed.run_id
    reg.close()


def test_run_of_a_live_process_is_not_resumed(registry_url, tmp_path):
    reg = _reg(registry_url, tmp_path)
    cid = _corpus(reg)
    info = _start(reg, cid)
    # this process is alive: its running run is not taken over
    assert _start(reg, cid).run_id != info.run_id

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _sql(registry_url, "update runs set pid = :pid where id = :id", pid=proc.pid, id=info.run_id)
        other = _start(reg, cid, seed=5)  # unrelated, just to show nothing breaks
        live = _start(reg, cid, config_hash="cfg-live")
        _sql(registry_url, "update runs set pid = :pid where id = :id", pid=proc.pid, id=live.run_id)
        second = _start(reg, cid, config_hash="cfg-live")
        assert not second.resumed and second.run_id != live.run_id and second.version == live.version + 1
    finally:
        proc.kill()
        proc.wait()
    # the process is gone: its run (still marked running) can now be resumed
    third = _start(reg, cid, config_hash="cfg-live")
    assert third.resumed and third.run_id == live.run_id
    assert other.run_id not in (live.run_id, second.run_id)
    reg.close()


def test_fusion_inputs(registry_url, tmp_path):
    reg = _reg(registry_url, tmp_path)
    cid = _corpus(reg)
    sp = _start(reg, cid)
    fa = _start(reg, cid, pipeline="face.hog_svm")
    _complete(reg, sp.run_id, 0.6)
    _complete(reg, fa.run_id, 0.5)
    fu = _start(reg, cid, pipeline="fuse.svm_linear", inputs={"speech": sp.run_id, "face": fa.run_id})
    assert reg.get_run(fu.run_id).inputs == {"speech": sp.run_id, "face": fa.run_id}
    reg.fail_run(fu.run_id, "boom")
    # different inputs: a new version; same inputs: resumed
    assert not _start(reg, cid, pipeline="fuse.svm_linear", inputs={"speech": sp.run_id}).resumed
    assert _start(reg, cid, pipeline="fuse.svm_linear", inputs={"face": fa.run_id, "speech": sp.run_id}).resumed
    with pytest.raises(RegistryError, match="input run 999"):
        _start(reg, cid, pipeline="fuse.svm_linear", inputs={"speech": 999})
    reg.close()


# ----------------------------------------------------------------------------- integrity


def test_tampered_artifact_is_refused(registry_url, tmp_path):
    reg = _reg(registry_url, tmp_path)
    cid = _corpus(reg)
    info = _start(reg, cid)
    _complete(reg, info.run_id, 0.7)
    art = next(a for a in reg.get_run(info.run_id).artifacts if a.fold == 1)
    path = Path(art.path)
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactCorruptedError) as exc:
        reg.fold_artifact(info.run_id, 1, "model")
    assert str(path) in exc.value.message and f"run {info.run_id}, fold 1" in exc.value.message
    assert "rerun" in exc.value.hint
    with pytest.raises(ArtifactCorruptedError):
        reg.get_artifact(art.sha256)
    assert reg.fold_artifact(info.run_id, 0, "model")  # the other fold is fine

    path.unlink()
    with pytest.raises(RegistryError, match="missing") as exc:
        reg.fold_artifact(info.run_id, 1, "model")
    assert not isinstance(exc.value, ArtifactCorruptedError) and str(path) in exc.value.message
    reg.close()


def test_schema_too_new_is_refused_and_left_unchanged(registry_url, tmp_path):
    reg = _reg(registry_url, tmp_path)
    _corpus(reg)
    reg.close()
    _sql(registry_url, "update alembic_version set version_num = 'ffff9999'")
    db = tmp_path / "registry.db"
    before = _sha(db) if registry_url.startswith("sqlite") else None
    files_before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(SchemaTooNewError) as exc:
        _reg(registry_url, tmp_path)
    where = str(db) if registry_url.startswith("sqlite") else registry_url.split("?")[0].rsplit("/", 1)[-1]
    assert where in exc.value.message and "ffff9999" in exc.value.message
    assert "pip install -U emokit" in exc.value.hint and "EMOKIT_REGISTRY" in exc.value.hint
    if before is not None:
        assert _sha(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == files_before
    assert _sql(registry_url, "select version_num from alembic_version") == [("ffff9999",)]
    assert _sql(registry_url, "select name from corpora") == [("demo",)]


def test_record_fold_is_atomic(registry_url, tmp_path, monkeypatch):
    reg = _reg(registry_url, tmp_path)
    cid = _corpus(reg)
    info = _start(reg, cid)

    real_put = reg.artifacts.put
    calls = []

    def failing_put(data):
        calls.append(data)
        if len(calls) == 2:
            raise RegistryError("disk full", "free some space")
        return real_put(data)

    monkeypatch.setattr(reg.artifacts, "put", failing_put)
    with pytest.raises(RegistryError, match="disk full"):
        reg.record_fold(info.run_id, 0, n_train=4, n_test=4, seconds=0.1, scores={"accuracy": 0.5},
                        predictions=_preds(0), artifacts={"a": b"first", "b": b"second"})
    monkeypatch.undo()
    assert reg.finished_folds(info.run_id) == set()
    assert reg.predictions(info.run_id) == [] and reg.get_run(info.run_id).fold_results == []

    # a failure inside the transaction (a clip already predicted) also leaves nothing behind
    reg.record_fold(info.run_id, 0, n_train=4, n_test=4, seconds=0.1, scores={"accuracy": 0.5},
                    predictions=_preds(0), artifacts={"a": b"first"})
    with pytest.raises(RegistryError, match="exactly one fold"):
        reg.record_fold(info.run_id, 1, n_train=4, n_test=4, seconds=0.1, scores={"accuracy": 0.5},
                        predictions=_preds(0), artifacts={"a": b"other"})
    run = reg.get_run(info.run_id)
    assert [f.fold for f in run.fold_results] == [0] and len(run.artifacts) == 1
    assert _sql(registry_url, "select count(*) from scores where fold = 1") == [(0,)]
    reg.close()


def test_bulk_predictions_are_fast(registry_url, tmp_path):
    reg = _reg(registry_url, tmp_path)
    cid = reg.upsert_corpus(name="ravdess", fingerprint="r", classes=[str(i) for i in range(8)], n_clips=1440, root="/r")
    info = reg.start_run(pipeline="speech.x", modality="speech", params={}, config_hash="h", profile="paper",
                         seed=0, corpus_id=cid, folds=[[str(a)] for a in range(5)], library_versions={})
    t = time.perf_counter()
    for fold in range(5):
        preds = [(f"{fold:02d}-{i:04d}", str(fold), i % 8, (i + fold) % 8, [0.125] * 8) for i in range(288)]
        reg.record_fold(info.run_id, fold, n_train=1152, n_test=288, seconds=1.0, scores={"accuracy": 0.5},
                        predictions=preds, artifacts={"model": bytes(1000) + bytes([fold])})
    elapsed = time.perf_counter() - t
    assert len(reg.predictions(info.run_id)) == 1440
    assert elapsed < 5.0, elapsed
    reg.close()


# ----------------------------------------------------------------------------- leaderboard


def test_leaderboard_view_and_api(registry_url, tmp_path):
    reg = _reg(registry_url, tmp_path)
    cid = _corpus(reg)
    runs = {}
    for pipeline, accs in {"speech.mfcc_svm": [0.6, 0.8, 0.7], "face.hog_svm": [0.5, 0.4]}.items():
        for acc in accs:
            info = _start(reg, cid, pipeline=pipeline)
            _complete(reg, info.run_id, acc)
            runs[(pipeline, info.version)] = info.run_id
    _start(reg, cid, pipeline="fuse.svm_linear")  # unfinished: not on the board
    failed = _start(reg, cid, pipeline="speech.mfcc_svm", config_hash="cfg-x")
    reg.fail_run(failed.run_id, "boom")
    reg.close()

    from sqlalchemy import create_engine, text

    engine = create_engine(registry_url)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(text("select * from leaderboard")).mappings()]
        n_finished = conn.execute(text("select count(*) from finished_runs")).scalar()
    engine.dispose()
    assert [(r["model"], r["version"], r["accuracy"]) for r in rows] == [
        ("speech.mfcc_svm", 2, 0.8),
        ("face.hog_svm", 1, 0.5),
    ]
    top = rows[0]
    assert top["corpus"] == "demo" and top["modality"] == "speech" and top["run_id"] == runs[("speech.mfcc_svm", 2)]
    assert (top["ci95"], top["n_folds"], top["n_clips"], top["profile"]) == (0.02, 2, 8, "quick")
    assert top["finished_at"] is not None
    assert {"corpus", "modality", "model", "version", "run_id", "profile", "accuracy", "ci95", "macro_f1",
            "n_folds", "n_clips", "finished_at"} <= set(top)
    assert n_finished == 5

    reg = _reg(registry_url, tmp_path)
    board = reg.leaderboard(corpus="demo")
    from_view = [{k: getattr(r, k) for k in ("corpus", "model", "version", "run_id", "accuracy", "ci95", "n_folds",
                                             "n_clips", "config_hash")} for r in board]
    assert from_view == [{k: row[k] for k in from_view[0]} for row in rows]
    assert [(r.model, r.version, r.value) for r in board] == [("speech.mfcc_svm", 2, 0.8), ("face.hog_svm", 1, 0.5)]
    assert [r.model for r in reg.leaderboard(modality="face")] == ["face.hog_svm"]
    by_f1 = reg.leaderboard(metric="macro_f1")
    assert by_f1[0].value == pytest.approx(0.75)
    assert reg.leaderboard(corpus="nope") == []
    reg.close()


REVISIONS = sorted(p.name[:4] for p in (Path(__file__).resolve().parents[1] / "emokit_core" / "registry" /
                                        "migrations" / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


@pytest.mark.parametrize("revision", [r for r in REVISIONS if r != HEAD])
def test_upgrade_from_each_older_schema_keeps_its_data(registry_url, tmp_path, revision):
    from alembic import command
    from sqlalchemy import create_engine

    from emokit_core.registry.engine import alembic_config

    assert REVISIONS[-1] == HEAD
    engine = create_engine(registry_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
        conn.exec_driver_sql("insert into corpora (name, fingerprint, classes, n_clips, root, created_at) "
                             "values ('demo', 'fp', '[\"a\"]', 1, '/x', '2026-01-01 00:00:00')")
    engine.dispose()
    reg = _reg(registry_url, tmp_path)
    assert _sql(registry_url, "select version_num from alembic_version") == [(HEAD,)]
    assert _sql(registry_url, "select name from corpora") == [("demo",)]
    assert reg.list_weights() == []
    cid = reg.upsert_corpus(name="demo", fingerprint="fp", classes=["a"], n_clips=1, root="/x")
    _complete(reg, _start(reg, cid).run_id, 0.9)  # the upgraded schema takes new runs
    assert [r.value for r in reg.leaderboard()] == [0.9]
    reg.close()


def test_weights_registered_resolved_and_checked(registry_url, tmp_path):
    reg = _reg(registry_url, tmp_path)
    ckpt = tmp_path / "Cnn14_16k.pth"
    ckpt.write_bytes(b"weights v1")
    added = reg.add_weights("cnn14", ckpt, kind="panns-cnn14")
    assert added.sha256 == hashlib.sha256(b"weights v1").hexdigest()
    resolved = reg.resolve_weights("cnn14")
    assert (resolved.name, resolved.path, resolved.sha256) == ("cnn14", str(ckpt.resolve()), added.sha256)
    assert reg.resolve_weights(str(ckpt)).name is None  # a plain path works too
    with pytest.raises(RegistryError, match="already registered"):
        reg.add_weights("cnn14", ckpt)
    with pytest.raises(RegistryError) as info:
        reg.resolve_weights("cnn41")
    assert "no weights named 'cnn41'" in info.value.message
    ckpt.write_bytes(b"weights v2")
    with pytest.raises(RegistryError, match="changed since it was registered"):
        reg.resolve_weights("cnn14")
    reg.add_weights("cnn14", ckpt, replace=True)
    assert reg.resolve_weights("cnn14").sha256 == hashlib.sha256(b"weights v2").hexdigest()
    assert [w.name for w in reg.list_weights()] == ["cnn14"]
