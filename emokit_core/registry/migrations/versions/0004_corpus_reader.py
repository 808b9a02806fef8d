"""The corpus reader of each corpus and the options it was given (so that the report can read
a clip's media again through the corpus table), and a ``finished_runs`` view that the leaderboard API reads as it is: each
run's version parameters and the sum of squares of its per-fold accuracy (for the standard
deviation, as SQLite has no sqrt everywhere).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

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
       fa.fold_mean AS fold_mean,
       fa.fold_min AS fold_min,
       fa.fold_max AS fold_max,
       fa.fold_count AS fold_count,
       fa.fold_sum_sq AS fold_sum_sq,
       (SELECT COUNT(*) FROM fold_results fr WHERE fr.run_id = r.id) AS n_folds,
       (SELECT COUNT(*) FROM predictions p WHERE p.run_id = r.id) AS n_clips,
       r.finished_at AS finished_at,
       r.seed AS seed,
       mv.config_hash AS config_hash,
       mv.params AS params,
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
LEFT JOIN (SELECT s.run_id AS run_id, AVG(s.value) AS fold_mean, MIN(s.value) AS fold_min,
                  MAX(s.value) AS fold_max, COUNT(s.value) AS fold_count,
                  SUM((s.value - m2.mean) * (s.value - m2.mean)) AS fold_sum_sq
           FROM scores s
           JOIN (SELECT run_id, AVG(value) AS mean FROM scores
                 WHERE fold IS NOT NULL AND metric = 'accuracy' GROUP BY run_id) m2 ON m2.run_id = s.run_id
           WHERE s.fold IS NOT NULL AND s.metric = 'accuracy' AND s.value IS NOT NULL
           GROUP BY s.run_id) fa ON fa.run_id = r.id
WHERE r.status = 'finished'
"""


def _views_0003() -> tuple[str, str]:
    """The views as revision 0003 defined them (alembic loads revisions as files, not a package)."""
    path = Path(__file__).with_name("0003_run_tags.py")
    spec = importlib.util.spec_from_file_location("emokit_registry_revision_0003", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FINISHED_RUNS_SQL, module.LEADERBOARD_SQL


def _replace_views(finished_runs_sql: str, leaderboard_sql: str) -> None:
    op.execute("DROP VIEW IF EXISTS leaderboard")  # depends on finished_runs: drop it first
    op.execute("DROP VIEW IF EXISTS finished_runs")
    op.execute(finished_runs_sql)
    op.execute(leaderboard_sql)


def upgrade() -> None:
    op.add_column("corpora", sa.Column("reader", sa.String(200), nullable=True))
    op.add_column("corpora", sa.Column("reader_options", sa.JSON(), nullable=True))
    _replace_views(FINISHED_RUNS_SQL, _views_0003()[1])  # the leaderboard view keeps its definition


def downgrade() -> None:
    finished_runs_0003, leaderboard_0003 = _views_0003()
    op.execute("DROP VIEW IF EXISTS leaderboard")
    op.execute("DROP VIEW IF EXISTS finished_runs")
    with op.batch_alter_table("corpora") as batch:
        batch.drop_column("reader")
        batch.drop_column("reader_options")
    op.execute(finished_runs_0003)
    op.execute(leaderboard_0003)
