"""Significance tests: McNemar and Cochran's Q against textbook examples, compare_runs on recorded runs,
the runs it refuses, and `emokit compare`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from emokit_core.errors import RegistryError
from emokit_core.registry import Registry
from emokit_core.stats import EXACT_BELOW, CompareError, cochran, compare_runs, mcnemar_pair

from .cli import emokit
from .test_evaluation import hand_example, record_run


def _pairs(n11: int, n10: int, n01: int, n00: int) -> tuple[np.ndarray, np.ndarray]:
    """Correctness vectors of two runs with the given 2x2 table (n10: a right, b wrong)."""
    a = np.array([1] * n11 + [1] * n10 + [0] * n01 + [0] * n00, dtype=bool)
    b = np.array([1] * n11 + [0] * n10 + [1] * n01 + [0] * n00, dtype=bool)
    return a, b


# ----------------------------------------------------------------------------- textbook examples


def test_mcnemar_on_agresti_presidential_approval():
    # Agresti, Categorical Data Analysis: approval in two surveys [[794, 86], [150, 570]];
    # z^2 = (86 - 150)^2 / 236 = 17.36, with the continuity correction (|86 - 150| - 1)^2 / 236 = 16.82
    a, b = _pairs(794, 86, 150, 570)
    plain = mcnemar_pair(a, b, correction=False)
    assert (plain["n11"], plain["n10"], plain["n01"], plain["n00"]) == (794, 86, 150, 570)
    assert not plain["exact"] and round(plain["statistic"], 2) == 17.36
    assert plain["p"] == pytest.approx(math.erfc(math.sqrt(17.3559 / 2)), rel=1e-3)  # chi-square, 1 df
    corrected = mcnemar_pair(a, b)  # the default for many discordant clips
    assert not corrected["exact"] and corrected["correction"] and round(corrected["statistic"], 2) == 16.82
    assert corrected["p"] == pytest.approx(4.11e-5, rel=1e-2)


def test_mcnemar_is_exact_binomial_for_few_discordant_clips():
    a, b = _pairs(40, 2, 8, 10)  # 10 discordant: two-sided binomial 2 * P(X <= 2 | 10, 1/2) = 112 / 1024
    result = mcnemar_pair(a, b)
    assert result["exact"] and not result["correction"]
    assert result["statistic"] == 2 and result["p"] == pytest.approx(112 / 1024)
    assert mcnemar_pair(*_pairs(10, 12, EXACT_BELOW - 13, 5))["exact"]  # b + c = 24
    assert not mcnemar_pair(*_pairs(10, 12, EXACT_BELOW - 12, 5))["exact"]  # b + c = 25
    same = mcnemar_pair(*_pairs(30, 0, 0, 4))
    assert same["statistic"] == 0 and same["p"] == 1.0


def test_cochran_q_on_siegel_castellan_interview_example():
    # Siegel & Castellan, Nonparametric Statistics: 18 housewives x 3 interview styles, Q = 16.7 (df 2)
    rows = [(1, 1, 1)] * 3 + [(1, 1, 0)] * 8 + [(1, 0, 0)] * 2 + [(0, 1, 0)] * 2 + [(0, 0, 0)] * 3
    result = cochran(np.array(rows))
    assert result["q"] == pytest.approx(2 * (3 * (13 ** 2 + 13 ** 2 + 3 ** 2) - 29 ** 2) / (3 * 29 - 63))
    assert round(result["q"], 1) == 16.7 and result["df"] == 2
    assert result["p"] == pytest.approx(math.exp(-result["q"] / 2))  # chi-square with 2 df
    assert cochran(np.ones((5, 3))) == {"q": 0.0, "df": 2, "p": 1.0}  # no clip tells the runs apart


# ----------------------------------------------------------------------------- compare_runs


def _three_runs(reg: Registry) -> list[int]:
    folds, clips = hand_example()
    perfect = [c[:4] + (c[3],) for c in clips]
    wrong = [c[:4] + ((c[3] + 1) % 3,) for c in clips]
    return [record_run(reg, folds, clips, pipeline="speech.hand"),
            record_run(reg, folds, perfect, pipeline="face.perfect"),
            record_run(reg, folds, wrong, pipeline="fuse.wrong")]


def test_compare_three_runs(tmp_path):
    reg = Registry(tmp_path / "r.db")
    ids = _three_runs(reg)
    result = compare_runs(reg, ids)
    assert result["n_clips"] == 10 and result["alpha"] == 0.05 and result["n_pairs"] == 3
    assert [r["n_correct"] for r in result["runs"]] == [7, 10, 0]
    assert result["runs"][0]["correct_std"] == pytest.approx(np.std([1] * 7 + [0] * 3, ddof=1))
    expected_q = cochran(np.array([[1, 1, 0]] * 7 + [[0, 1, 0]] * 3))
    assert result["cochran"] == {**expected_q, "significant": expected_q["p"] < 0.05}
    by_pair = {(t["a"], t["b"]): t for t in result["mcnemar"]}
    assert list(by_pair) == [(ids[0], ids[1]), (ids[0], ids[2]), (ids[1], ids[2])]
    t = by_pair[(ids[0], ids[1])]
    assert (t["n10"], t["n01"], t["exact"]) == (0, 3, True) and t["p"] == pytest.approx(0.25)
    assert t["p_bonferroni"] == pytest.approx(0.75) and not t["significant"]
    t = by_pair[(ids[1], ids[2])]
    assert (t["n10"], t["n01"]) == (10, 0) and t["p"] == pytest.approx(2 / 1024)
    assert t["p_bonferroni"] == pytest.approx(6 / 1024) and t["significant"] and t["better"] == ids[1]
    assert compare_runs(reg, ids[:2])["cochran"] is None  # two runs: McNemar only
    assert not compare_runs(reg, ids, alpha=0.001)["mcnemar"][2]["significant"]
    assert compare_runs(reg, ["speech.hand@1", "face.perfect"])["runs"][1]["run_id"] == ids[1]
    reg.close()


def test_compare_refuses_what_it_cannot_test(tmp_path):
    reg = Registry(tmp_path / "r.db")
    ids = _three_runs(reg)
    folds, clips = hand_example()
    with pytest.raises(CompareError, match="two or more runs, got 1") as exc:
        compare_runs(reg, [ids[0]])
    assert "emokit compare" in exc.value.hint
    with pytest.raises(CompareError, match=f"run {ids[0]} is named twice"):
        compare_runs(reg, [ids[0], ids[0]])
    with pytest.raises(RegistryError, match="no run 99"):
        compare_runs(reg, [ids[0], 99])
    with pytest.raises(RegistryError, match="no model 'speech.nope'"):
        compare_runs(reg, [ids[0], "speech.nope"])
    fewer = record_run(reg, folds, clips[:-1], pipeline="speech.fewer")
    with pytest.raises(CompareError, match=f"runs {ids[0]} and {fewer} are not on the same clips: 1 clips of run "
                                           f"{ids[0]} are not in run {fewer} \\(e.g. f1-5\\)"):
        compare_runs(reg, [ids[0], fewer])
    other = record_run(reg, folds, clips, pipeline="speech.other", corpus="ravdess")
    renamed = [("r-" + c[0],) + c[1:] for c in clips]
    elsewhere = record_run(reg, folds, renamed, pipeline="speech.elsewhere", corpus="ravdess")
    with pytest.raises(CompareError, match="not on the same clips \\(corpus demo vs ravdess\\)"):
        compare_runs(reg, [ids[0], elsewhere])
    assert compare_runs(reg, [ids[0], other])["n_clips"] == 10  # same clip ids and folds on another corpus
    swapped = [c[:2] + (1 - c[2],) + c[3:] for c in clips]
    refolded = record_run(reg, [["s2"], ["s1"]], swapped, pipeline="speech.same_folds_renumbered")
    assert compare_runs(reg, [ids[0], refolded])["n_clips"] == 10  # same held-out actors, other numbering
    moved = record_run(reg, [["s1", "s2"], ["s9"]], [c[:2] + (0,) + c[3:] for c in clips] +
                       [("extra", "s9", 1, 0, 0)], pipeline="speech.moved")
    with pytest.raises(CompareError, match="not on the same clips"):
        compare_runs(reg, [ids[0], moved])
    regrouped = record_run(reg, [["s1", "s2"], ["s3"]], [c[:2] + (0,) + c[3:] for c in clips][:-1] +
                           [clips[-1][:1] + ("s3", 1) + clips[-1][3:]], pipeline="speech.regrouped")
    with pytest.raises(CompareError, match="are on different folds: 10 clips"):
        compare_runs(reg, [ids[0], regrouped])
    running = record_run(reg, folds, clips, pipeline="speech.running", finish=False)
    with pytest.raises(CompareError, match=f"run {running} .* is running, not finished"):
        compare_runs(reg, [ids[0], running])
    with pytest.raises(CompareError, match="alpha"):
        compare_runs(reg, ids, alpha=1.5)
    reg.close()


# ----------------------------------------------------------------------------- the command


def test_compare_command(tmp_path):
    db = tmp_path / "r.db"
    reg = Registry(db)
    ids = _three_runs(reg)
    folds, clips = hand_example()
    elsewhere = record_run(reg, folds, [("r-" + c[0],) + c[1:] for c in clips], corpus="ravdess")
    reg.close()
    result = emokit("compare", *map(str, ids), "--registry", str(db), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["n_clips"] == 10 and len(data["mcnemar"]) == 3 and data["cochran"]["df"] == 2
    text = emokit("compare", *map(str, ids), "--registry", str(db), "--alpha", "0.01")
    assert text.returncode == 0, text.stderr
    assert "Cochran's Q" in text.stdout and "exact binomial" in text.stdout and "face.perfect@1 better" in text.stdout
    for args, first_line in (
        ([str(ids[0])], "error: compare needs two or more runs, got 1"),
        ([str(ids[0]), "99"], f"error: no run 99 in the registry {db}"),
        ([str(ids[0]), str(elsewhere)], f"error: runs {ids[0]} and {elsewhere} are not on the same clips"),
    ):
        bad = emokit("compare", *args, "--registry", str(db))
        lines = bad.stderr.splitlines()
        assert bad.returncode == 1 and len(lines) == 2 and "Traceback" not in bad.stderr, bad.stderr
        assert lines[0].startswith(first_line) and lines[1].startswith("hint: ")
