"""ORM models of the registry (SQLAlchemy 2.x declarative).

The tables are created and changed only by the alembic migrations in ``migrations/``;
these classes mirror them (a test checks that autogenerate sees no difference).
All timestamps are UTC. Constraint names follow :data:`NAMING_CONVENTION` so that
migrations can refer to them on every backend.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    column,
    table,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

UNFINISHED_STATUSES = ("running", "failed", "interrupted")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Corpus(Base):
    __tablename__ = "corpora"
    __table_args__ = (UniqueConstraint("name", "fingerprint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(128))
    classes: Mapped[list[str]] = mapped_column(JSON)  # ordered: label i is classes[i]
    n_clips: Mapped[int] = mapped_column(Integer)
    root: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reader: Mapped[Optional[str]] = mapped_column(String(200))  # its corpus-table name (0004)
    reader_options: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)  # what the reader was given


class Model(Base):
    """A pipeline name (``speech.mfcc_svm``); its trained incarnations are versions."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    modality: Mapped[str] = mapped_column(String(32))  # speech | face | fusion
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, 3 … per model
    config_hash: Mapped[str] = mapped_column(String(128), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    profile: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Run(Base):
    """The cross-validated training of one model version on one corpus (1:1 with a version)."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('running', 'finished', 'failed', 'interrupted')", name="status"
        ),
        Index(None, "corpus_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), unique=True
    )
    corpus_id: Mapped[int] = mapped_column(ForeignKey("corpora.id"))
    seed: Mapped[int] = mapped_column(Integer)
    profile: Mapped[str] = mapped_column(String(64))
    folds: Mapped[list[list[str]]] = mapped_column(JSON)  # fold i holds out actors folds[i]
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    seconds: Mapped[Optional[float]] = mapped_column(Float)
    library_versions: Mapped[dict[str, Any]] = mapped_column(JSON)
    weights: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    command: Mapped[str] = mapped_column(Text)
    error: Mapped[Optional[str]] = mapped_column(Text)


class RunInput(Base):
    """The modality runs whose out-of-fold posteriors a fusion run was trained on."""

    __tablename__ = "run_inputs"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    modality: Mapped[str] = mapped_column(String(32), primary_key=True)
    input_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)


class RunTag(Base):
    """A ``key = value`` label on a run (MLflow-like): grid coordinates, notes, provenance."""

    __tablename__ = "run_tags"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class FoldResult(Base):
    __tablename__ = "fold_results"
    __table_args__ = (UniqueConstraint("run_id", "fold"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    fold: Mapped[int] = mapped_column(Integer)
    n_train: Mapped[int] = mapped_column(Integer)
    n_test: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Score(Base):
    """One metric of one fold (``fold`` NULL: pooled over all clips of the run)."""

    __tablename__ = "scores"
    __table_args__ = (
        UniqueConstraint("run_id", "fold", "metric"),
        # NULLs are distinct in a UNIQUE constraint: pooled scores need their own index.
        Index(
            "uq_scores_pooled",
            "run_id",
            "metric",
            unique=True,
            sqlite_where=text("fold IS NULL"),
            postgresql_where=text("fold IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    fold: Mapped[Optional[int]] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[Optional[float]] = mapped_column(Float)  # NULL for NaN


class Prediction(Base):
    """Out-of-fold posteriors of one clip (each clip is held out in exactly one fold)."""

    __tablename__ = "predictions"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    clip_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    fold: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(64))
    label: Mapped[int] = mapped_column(Integer)
    pred: Mapped[int] = mapped_column(Integer)
    probs: Mapped[list[float]] = mapped_column(JSON)


class Artifact(Base):
    __tablename__ = "artifacts"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RunArtifact(Base):
    """A named artifact of a run's fold (``fold`` NULL: belongs to the whole run)."""

    __tablename__ = "run_artifacts"
    __table_args__ = (
        UniqueConstraint("run_id", "fold", "name"),
        Index(
            "uq_run_artifacts_run_level",
            "run_id",
            "name",
            unique=True,
            sqlite_where=text("fold IS NULL"),
            postgresql_where=text("fold IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    fold: Mapped[Optional[int]] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(ForeignKey("artifacts.sha256"), index=True)


class Weights(Base):
    """A local pretrained checkpoint registered by name (``emokit weights add``)."""

    __tablename__ = "weights"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[Optional[str]] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    provenance: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)  # what made them (0005)


# The view of finished runs that the migrations create (its columns as of revision 0004); the
# leaderboard API selects from it, so a run's figures have one SQL definition.
finished_runs = table(
    "finished_runs",
    *(column(name) for name in (
        "corpus", "modality", "model", "version", "run_id", "profile", "accuracy", "ci95", "macro_f1", "uar",
        "zeror_accuracy", "fold_mean", "fold_min", "fold_max", "fold_count", "fold_sum_sq", "n_folds", "n_clips",
        "seed", "config_hash", "corpus_fingerprint", "corpus_id", "model_id")),
    column("params", JSON),
    column("finished_at", DateTime(timezone=True)),
)
