"""The command line as a user meets it: one-line errors with hints, JSON, fast start-up.

Commands run in-process (tests/cli.py); a separate process where it is the point: what start-up
imports, the exit status and stderr of a real process, the traceback of an uncaught error."""

import json
import os
import sqlite3
import subprocess
import sys

from .cli import emokit

EMOKIT = [sys.executable, "-m", "emokit_cli"]


def test_start_up_imports_no_heavy_library():
    code = ("import sys, emokit_cli.app as a; a._add_plugin_commands(); "
            "print(sorted(m for m in ('torch', 'sklearn', 'numpy', 'sqlalchemy', 'cv2', 'av') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_unknown_pipeline_one_line_with_suggestion(tmp_path):
    result = subprocess.run(EMOKIT + ["run", "speech.mfc_svm", "--registry", str(tmp_path / "r.db")],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["error: unknown pipeline 'speech.mfc_svm'",
                                          "hint: did you mean 'speech.mfcc_svm'?"]


def test_registry_from_a_newer_emokit(tmp_path, tone_manifest):
    db = tmp_path / "r.db"
    assert emokit("runs", "--registry", str(db)).returncode == 0
    with sqlite3.connect(db) as con:
        con.execute("update alembic_version set version_num = '9999_future'")
    def dump():
        with sqlite3.connect(db) as con:
            return list(con.iterdump())

    before = dump()
    result = emokit("run", "speech.mfcc_svm", "--data", str(tone_manifest), "--registry", str(db))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith(("error:", "hint:"))]
    assert len(lines) == 2 and str(db) in lines[0] and "newer" in lines[0] and "upgrade emokit" in lines[1]
    assert "Traceback" not in result.stderr
    assert dump() == before  # nothing written, the future revision kept


def test_missing_corpus_folder(tmp_path):
    result = emokit("run", "speech.mfcc_svm", "--data", str(tmp_path / "nope"), "--registry", str(tmp_path / "r.db"))
    assert result.returncode == 1 and f"error: {tmp_path / 'nope'}: no such folder" in result.stderr


def test_traceback_behind_an_env_var(tmp_path):
    env = {**os.environ, "EMOKIT_TRACEBACK": "1"}
    result = subprocess.run(EMOKIT + ["run", "speech.mfc_svm", "--registry", str(tmp_path / "r.db")],
                            capture_output=True, text=True, env=env)
    assert "Traceback" in result.stderr and "UnknownNameError" in result.stderr


def test_runs_show_and_leaderboard_json(tmp_path, tone_manifest):
    db = str(tmp_path / "r.db")
    result = emokit("run", "speech.mfcc_svm", "speech.zeror", "fuse.svm_linear", "--data", str(tone_manifest),
                    "--registry", db, "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert "pooled" in result.stdout and "speech.mfcc_svm v1" in result.stdout
    runs = json.loads(emokit("runs", "--registry", db, "--json").stdout)
    assert [r["model"] for r in runs] == ["fuse.svm_linear", "speech.zeror", "speech.mfcc_svm"]
    shown = json.loads(emokit("runs", "show", str(runs[-1]["run_id"]), "--registry", db, "--json").stdout)
    assert len(shown["fold_results"]) == 3 and shown["params"]["n_mfcc"] == 20
    assert "emokit" in shown["library_versions"] and shown["command"].startswith("emokit run")
    text = emokit("runs", "show", str(runs[-1]["run_id"]), "--registry", db)
    assert text.returncode == 0 and "pooled" in text.stdout
    board = json.loads(emokit("leaderboard", "--registry", db, "--json").stdout)
    assert {r["model"] for r in board} == {"speech.mfcc_svm", "speech.zeror", "fuse.svm_linear"}
    assert all(r["n_folds"] == 3 for r in board)
    missing = emokit("runs", "show", "999", "--registry", db)
    assert missing.returncode == 1 and "no run 999" in missing.stderr


def test_param_overrides(tmp_path, tone_manifest):
    db = str(tmp_path / "r.db")
    result = emokit("run", "speech.mfcc_svm", "--data", str(tone_manifest), "--registry", db, "-p",
                    "speech.mfcc_svm.C=3", "-p", "n_mfcc=13", "--json", "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["runs"][0]["params"] == {"n_mfcc": 13, "C": 3.0, "gamma": "scale"}
    bad = emokit("run", "speech.mfcc_svm", "--data", str(tone_manifest), "--registry", db, "-p", "speech.mfcc_svm.c=3")
    assert bad.returncode == 1 and "no parameter 'c'" in bad.stderr and "did you mean 'C'" in bad.stderr


def test_pipelines_lists_params_and_profiles():
    rows = json.loads(emokit("pipelines", "--json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["fuse.svm_linear"]["params"]["C"]["default"] == 0.001
    assert set(by_name["speech.mfcc_svm"]["profiles"]) == {"quick", "paper"}


def test_weights_add_list_and_a_missing_name(tmp_path, tone_manifest):
    db = str(tmp_path / "r.db")
    ckpt = tmp_path / "model.pth"
    ckpt.write_bytes(b"\x00" * 1024)
    added = json.loads(emokit("weights", "add", "mine", str(ckpt), "--kind", "test", "--registry", db, "--json").stdout)
    assert added["name"] == "mine" and len(added["sha256"]) == 64
    listed = json.loads(emokit("weights", "list", "--registry", db, "--json").stdout)
    # the registered first, then those the plugins provide, marked as such with source and licence
    assert [w["name"] for w in listed] == ["mine", "ge2e-resemblyzer", "minixception-fer", "stn-fer2013"]
    assert listed[0]["provenance"] is None
    assert all(w["provenance"]["packaged"] and w["provenance"]["licence"] for w in listed[1:])
    shown = emokit("weights", "list", "--registry", db).stdout
    assert "Apache-2.0" in shown and "emokit, pretrained on" in shown
    missing = emokit("weights", "add", "x", str(tmp_path / "nope.pth"), "--registry", db)
    assert missing.returncode == 1 and "nope.pth: no such checkpoint file" in missing.stderr


def test_device_option_reaches_every_pipeline_with_a_device_parameter(tmp_path, tone_manifest):
    db = str(tmp_path / "r.db")
    result = emokit("run", "speech.panns_svc", "speech.mfcc_svm", "--data", str(tone_manifest), "--registry", db,
                    "--device", "cpu", "--json", "--workers", "1")
    assert result.returncode == 0, result.stderr
    params = {r["pipeline"]: r["params"] for r in json.loads(result.stdout)["runs"]}
    assert params["speech.panns_svc"]["device"] == "cpu"
    assert "device" not in params["speech.mfcc_svm"]  # a baseline has no device to set


def test_a_gpu_asked_for_where_there_is_none_is_one_clear_line(tmp_path, tone_manifest):
    import torch
    import pytest

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = emokit("run", "speech.panns_ft", "--data", str(tone_manifest), "--registry", str(tmp_path / "r.db"),
                    "--device", "cuda")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-2:] == [
        "error: device 'cuda' was asked for, but torch sees no CUDA GPU here",
        "hint: use --device cpu (or auto), or check the GPU driver and torch's CUDA build"]
