"""Initial registry schema: corpora, models, versions, runs, folds, scores, predictions,
artifacts, and the ``finished_runs`` / ``leaderboard`` views.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)

# Every finished run with its pooled scores (metric names 'accuracy', 'ci95', 'macro_f1').
FINISHED_RUNS_SQL = """
CREATE VIEW finished_runs AS
SELECT c.name AS corpus,
       m.modality AS modality,
       m.name AS model,
       mv.version AS version,
       r.id AS run_id,
       r.profile AS profile,
       acc.value AS accuracy,
       ci.value AS ci95,
       f1.value AS macro_f1,
       (SELECT COUNT(*) FROM fold_results fr WHERE fr.run_id = r.id) AS n_folds,
       (SELECT COUNT(*) FROM predictions p WHERE p.run_id = r.id) AS n_clips,
       r.finished_at AS finished_at,
       r.seed AS seed,
       mv.config_hash AS config_hash,
       c.fingerprint AS corpus_fingerprint,
       r.corpus_id AS corpus_id,
       m.id AS model_id
FROM runs r
JOIN model_versions mv ON mv.id = r.model_version_id
JOIN models m ON m.id = mv.model_id
JOIN corpora c ON c.id = r.corpus_id
LEFT JOIN scores acc ON acc.run_id = r.id AND acc.fold IS NULL AND acc.metric = 'accuracy'
LEFT JOIN scores ci ON ci.run_id = r.id AND ci.fold IS NULL AND ci.metric = 'ci95'
LEFT JOIN scores f1 ON f1.run_id = r.id AND f1.fold IS NULL AND f1.metric = 'macro_f1'
WHERE r.status = 'finished'
"""

# The best finished run per (corpus, model) by pooled accuracy; ties go to the earlier run.
LEADERBOARD_SQL = """
CREATE VIEW leaderboard AS
SELECT corpus, modality, model, version, run_id, profile, accuracy, ci95, macro_f1,
       n_folds, n_clips, finished_at, corpus_fingerprint
FROM (
    SELECT f.*,
           ROW_NUMBER() OVER (PARTITION BY f.corpus_id, f.model_id
                              ORDER BY f.accuracy DESC, f.run_id ASC) AS rank_in_model
    FROM finished_runs f
    WHERE f.accuracy IS NOT NULL
) ranked
WHERE rank_in_model = 1
ORDER BY corpus, accuracy DESC, model
"""


def upgrade() -> None:
    op.create_table(
        "corpora",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("classes", sa.JSON(), nullable=False),
        sa.Column("n_clips", sa.Integer(), nullable=False),
        sa.Column("root", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_corpora"),
        sa.UniqueConstraint("name", "fingerprint", name="uq_corpora_name_fingerprint"),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("modality", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_models"),
        sa.UniqueConstraint("name", name="uq_models_name"),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("config_hash", sa.String(128), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name="fk_model_versions_model_id_models", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),
    )
    op.create_index("ix_model_versions_config_hash", "model_versions", ["config_hash"])
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("corpus_id", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("folds", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("library_versions", sa.JSON(), nullable=False),
        sa.Column("weights", sa.JSON(), nullable=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name="fk_runs_model_version_id_model_versions",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["corpus_id"], ["corpora.id"], name="fk_runs_corpus_id_corpora"),
        sa.UniqueConstraint("model_version_id", name="uq_runs_model_version_id"),
        sa.CheckConstraint(
            "status IN ('running', 'finished', 'failed', 'interrupted')", name="ck_runs_status"
        ),
    )
    op.create_index("ix_runs_corpus_id_status", "runs", ["corpus_id", "status"])
    op.create_table(
        "run_inputs",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("modality", sa.String(32), nullable=False),
        sa.Column("input_run_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "modality", name="pk_run_inputs"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_inputs_run_id_runs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["input_run_id"], ["runs.id"], name="fk_run_inputs_input_run_id_runs"),
    )
    op.create_index("ix_run_inputs_input_run_id", "run_inputs", ["input_run_id"])
    op.create_table(
        "fold_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("fold", sa.Integer(), nullable=False),
        sa.Column("n_train", sa.Integer(), nullable=False),
        sa.Column("n_test", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_fold_results"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_fold_results_run_id_runs", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("run_id", "fold", name="uq_fold_results_run_id_fold"),
    )
    op.create_table(
        "scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("fold", sa.Integer(), nullable=True),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_scores"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_scores_run_id_runs", ondelete="CASCADE"),
        sa.UniqueConstraint("run_id", "fold", "metric", name="uq_scores_run_id_fold_metric"),
    )
    op.create_index(
        "uq_scores_pooled",
        "scores",
        ["run_id", "metric"],
        unique=True,
        sqlite_where=sa.text("fold IS NULL"),
        postgresql_where=sa.text("fold IS NULL"),
    )
    op.create_table(
        "predictions",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("clip_id", sa.String(255), nullable=False),
        sa.Column("fold", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("pred", sa.Integer(), nullable=False),
        sa.Column("probs", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "clip_id", name="pk_predictions"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_predictions_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "artifacts",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_artifacts"),
    )
    op.create_table(
        "run_artifacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("fold", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_artifacts"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_artifacts_run_id_runs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["sha256"], ["artifacts.sha256"], name="fk_run_artifacts_sha256_artifacts"
        ),
        sa.UniqueConstraint("run_id", "fold", "name", name="uq_run_artifacts_run_id_fold_name"),
    )
    op.create_index("ix_run_artifacts_sha256", "run_artifacts", ["sha256"])
    op.create_index(
        "uq_run_artifacts_run_level",
        "run_artifacts",
        ["run_id", "name"],
        unique=True,
        sqlite_where=sa.text("fold IS NULL"),
        postgresql_where=sa.text("fold IS NULL"),
    )
    op.execute(FINISHED_RUNS_SQL)
    op.execute(LEADERBOARD_SQL)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS leaderboard")
    op.execute("DROP VIEW IF EXISTS finished_runs")
    for table in (
        "run_artifacts",
        "artifacts",
        "predictions",
        "scores",
        "fold_results",
        "run_inputs",
        "runs",
        "model_versions",
        "models",
        "corpora",
    ):
        op.drop_table(table)
