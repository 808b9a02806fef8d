"""Run tags (MLflow-like ``key = value`` labels on a run) and richer ``finished_runs`` /
``leaderboard`` views: unweighted average recall, the ZeroR reference, the mean, lowest and
highest per-fold accuracy, and the version's config hash.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Per-fold spread uses only AVG/MIN/MAX so that the view works on every SQLite build (sqrt is
# an optional SQLite extension); `emokit leaderboard` adds the per-fold standard deviation.
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
       uar.value AS uar,
       zr.value AS zeror_accuracy,
       (SELECT AVG(s.value) FROM scores s
        WHERE s.run_id = r.id AND s.fold IS NOT NULL AND s.metric = 'accuracy') AS fold_mean,
       (SELECT MIN(s.value) FROM scores s
        WHERE s.run_id = r.id AND s.fold IS NOT NULL AND s.metric = 'accuracy') AS fold_min,
       (SELECT MAX(s.value) FROM scores s
        WHERE s.run_id = r.id AND s.fold IS NOT NULL AND s.metric = 'accuracy') AS fold_max,
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
LEFT JOIN scores uar ON uar.run_id = r.id AND uar.fold IS NULL AND uar.metric = 'uar'
LEFT JOIN scores zr ON zr.run_id = r.id AND zr.fold IS NULL AND zr.metric = 'zeror_accuracy'
WHERE r.status = 'finished'
"""

# The best finished run per (corpus, model) by pooled accuracy; ties go to the earlier run.
LEADERBOARD_SQL = """
CREATE VIEW leaderboard AS
SELECT corpus, modality, model, version, run_id, profile, accuracy, ci95, macro_f1, uar,
       zeror_accuracy, fold_mean, fold_min, fold_max, n_folds, n_clips, finished_at,
       config_hash, corpus_fingerprint
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

# The views as revision 0001 created them, restored by the downgrade.
FINISHED_RUNS_0001_SQL = """
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

LEADERBOARD_0001_SQL = """
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


def _replace_views(finished_runs_sql: str, leaderboard_sql: str) -> None:
    op.execute("DROP VIEW IF EXISTS leaderboard")  # depends on finished_runs: drop it first
    op.execute("DROP VIEW IF EXISTS finished_runs")
    op.execute(finished_runs_sql)
    op.execute(leaderboard_sql)


def upgrade() -> None:
    op.create_table(
        "run_tags",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key", name="pk_run_tags"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_tags_run_id_runs", ondelete="CASCADE"),
    )
    _replace_views(FINISHED_RUNS_SQL, LEADERBOARD_SQL)


def downgrade() -> None:
    _replace_views(FINISHED_RUNS_0001_SQL, LEADERBOARD_0001_SQL)
    op.drop_table("run_tags")
