"""Shared fixtures: an isolated emokit home, a manifest corpus of synthetic tones, a FER-2013 subset."""

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Feature cache and demo corpora go to a per-session folder, never the user's home."""
    home = tmp_path_factory.getbasetemp() / "emokit-home"
    monkeypatch.setenv("EMOKIT_HOME", str(home))
    monkeypatch.delenv("EMOKIT_REGISTRY", raising=False)
    return home


@pytest.fixture
def feature_cache(isolated_home):
    """The session's one feature cache (its own hit and miss counts): a clip's features are
    computed once, whichever test asks first."""
    from emokit_core.cache import FeatureCache

    return FeatureCache(isolated_home / "features")


def write_tone(path: Path, f0: float, rate: int = 16000, seconds: float = 1.0, seed: int = 0, stereo=False):
    import soundfile as sf

    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 4)) * 0.2
    wave = wave * np.hanning(len(t)) + rng.normal(0, 0.01, len(t))
    data = np.stack([wave, wave * 0.5], axis=1) if stereo else wave
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data.astype(np.float32), rate)


@pytest.fixture(scope="session")
def tone_manifest(tmp_path_factory) -> Path:
    """6 speakers x 3 labels (tones of distinct pitch) x 3 clips, with 3 folds stored as data."""
    root = tmp_path_factory.mktemp("tones")
    rows = ["path,label,speaker"]
    for s in range(6):
        for label, f0 in (("low", 140.0), ("mid", 260.0), ("high", 480.0)):
            for i in range(3):
                name = f"wav/spk{s}_{label}_{i}.wav"
                write_tone(root / name, f0 * (1 + 0.04 * s), rate=22050 if s % 2 else 16000, seed=s * 10 + i,
                           stereo=bool(i % 2))
                rows.append(f"{name},{label},spk{s}")
    (root / "tones.csv").write_text("\n".join(rows) + "\n")
    (root / "tones.folds.csv").write_text("speaker,fold\nspk0,0\nspk1,0\nspk2,1\nspk3,1\nspk4,2\nspk5,2\n")
    return root / "tones.csv"


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> Path:
    """The plugin kit's tiny demo corpus in RAVDESS layout: 5 actors (one per fold), 3 emotions,
    50 mp4 clips at 320x180 (tests of RAVDESS's own resolution make their own clips)."""
    from emokit_core.testing import TINY_CORPUS
    from emokit_plugins.corpora.demo_synth import generate

    root = tmp_path_factory.mktemp("tiny-demo") / "corpus"
    generate(root, **TINY_CORPUS, workers=2)
    return root


def copy_registry(db: Path, target_dir: Path) -> Path:
    """A private copy of a registry (database and artifact store) that a test may write to or damage."""
    import shutil
    import sqlite3

    target_dir.mkdir(parents=True)
    target = target_dir / db.name
    with sqlite3.connect(db) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    artifacts = db.with_name(f"{db.stem}.artifacts")
    if artifacts.exists():
        shutil.copytree(artifacts, target_dir / artifacts.name)
    return target


def _cross_validate(pipelines, corpus, db: Path, home: Path) -> dict[str, int]:
    from emokit_core.cache import FeatureCache
    from emokit_core.plugins import PluginHost
    from emokit_core.registry import Registry
    from emokit_core.runner import Runner

    registry = Registry(db)
    try:
        runner = Runner(PluginHost(), registry, FeatureCache(home / "features"), workers=2)
        outcome = runner.run(pipelines, corpus, seed=0)
    finally:
        registry.close()
    return {r.pipeline: r.run_id for r in outcome.runs}


@pytest.fixture(scope="session")
def demo_registry(tiny_demo, tmp_path_factory):
    """The cheap main pipelines (speech.mfcc_svm, face.pixels_vote, fuse.svm_linear) cross-validated
    once per session on the tiny demo corpus (grouped folds): ``(registry path, {pipeline: run id})``.
    Shared: a test that writes to it works on ``copy_registry(path, tmp_path / ...)``."""
    from emokit_core.corpora import read_ravdess

    db = tmp_path_factory.mktemp("demo-registry") / "registry.db"
    home = tmp_path_factory.getbasetemp() / "emokit-home"
    return db, _cross_validate(["speech.mfcc_svm", "face.pixels_vote", "fuse.svm_linear"],
                               read_ravdess(tiny_demo, folds="grouped"), db, home)


@pytest.fixture(scope="session")
def tone_registry(tone_manifest, tmp_path_factory):
    """speech.mfcc_svm, speech.zeror and fuse.logreg cross-validated once per session on the tone
    manifest (seed 0): ``(registry path, [run ids in that order])``; copy it before writing."""
    from emokit_core.corpora import read_manifest

    db = tmp_path_factory.mktemp("tone-registry") / "registry.db"
    home = tmp_path_factory.getbasetemp() / "emokit-home"
    runs = _cross_validate(["speech.mfcc_svm", "speech.zeror", "fuse.logreg"], read_manifest(tone_manifest), db, home)
    return db, list(runs.values())


FER2013 = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013" / "fer2013.tar.gz"


@pytest.fixture(scope="session")
def fer_subset(tmp_path_factory) -> Path:
    """Real faces: the first 30 training and 10 test images of each FER-2013 class (280 images),
    read from ../shared/data/fer2013 in its image-folder layout."""
    import tarfile

    if not FER2013.is_file():
        pytest.fail(f"{FER2013} is missing: the FER-2013 tests need ../shared/data beside the checkout")
    root = tmp_path_factory.mktemp("fer2013")
    wanted = {"train": 30, "test": 10}
    taken: dict[tuple[str, str], int] = {}
    with tarfile.open(FER2013, "r:gz") as archive:
        for member in archive:
            parts = Path(member.name).parts[-3:]
            if not member.isfile() or len(parts) != 3 or parts[0] not in wanted:
                continue
            key = (parts[0], parts[1])
            if taken.get(key, 0) >= wanted[parts[0]]:
                continue
            taken[key] = taken.get(key, 0) + 1
            target = root.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.extractfile(member).read())
            if len(taken) == 14 and all(n == wanted[split] for (split, _), n in taken.items()):
                break  # 7 classes in both splits
    return root


# -- registry backends ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A PostgreSQL server to create test databases on: EMOKIT_TEST_PG_URL (a database the tests
    may create others from), else a throwaway cluster started here with scripts/pg-throwaway (a
    unix socket only, no TCP). Without PostgreSQL the PostgreSQL tests are skipped, except where
    EMOKIT_REQUIRE_POSTGRES=1 (CI installs it): there they fail."""
    import os
    import shutil
    import subprocess
    import tempfile

    url = os.environ.get("EMOKIT_TEST_PG_URL")
    if url:
        yield url
        return
    script = Path(__file__).resolve().parents[1] / "scripts" / "pg-throwaway"
    have_server = shutil.which("initdb") or list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not have_server:
        reason = "no PostgreSQL server here (apt-get install postgresql, or set EMOKIT_TEST_PG_URL)"
        if os.environ.get("EMOKIT_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    parent = Path(tempfile.mkdtemp(prefix="emokit-pg-"))
    parent.chmod(0o711)  # the server's unprivileged user must reach its directory inside
    cluster = parent / "cluster"
    started = subprocess.run(["bash", str(script), "start", str(cluster)], capture_output=True, text=True)
    if started.returncode:
        pytest.fail(f"scripts/pg-throwaway could not start PostgreSQL: {started.stderr.strip()}")
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run(["bash", str(script), "stop", str(cluster)], capture_output=True)
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request, tmp_path):
    """The URL of a new, empty registry database, once per backend: a file for SQLite, a
    database of its own on the test server for PostgreSQL (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    server = make_url(request.getfixturevalue("postgres_server"))
    name = f"emokit_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
