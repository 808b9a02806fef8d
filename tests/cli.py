"""The ``emokit`` command run inside the test process, as the console script runs it.

Most CLI tests check what a command prints and its exit code; a new interpreter per call would
spend seconds importing torch each time.  :func:`emokit` calls ``emokit_cli.app.main`` with the
arguments, environment and working directory given, and returns what a subprocess would:
``returncode``, ``stdout`` and ``stderr``.  Tests where the separate process is the point (start-up
imports, the traceback of an uncaught error, a fresh environment) still use ``subprocess``.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping


@dataclass
class Completed:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> "Completed":
        assert self.returncode == 0, f"emokit {' '.join(self.args)} failed ({self.returncode}):\n{self.stderr}"
        return self


class _Stream(io.StringIO):
    """A captured stdout/stderr that, like a pipe, is no terminal."""

    def isatty(self) -> bool:
        return False


def emokit(*args: object, env: Mapping[str, str] | None = None, cwd: str | Path | None = None) -> Completed:
    """Run ``emokit ARGS...`` in this process; ``env`` replaces the environment for the call."""
    from emokit_cli.app import main

    argv = [str(a) for a in args]
    saved_env, saved_argv, saved_cwd = dict(os.environ), sys.argv, os.getcwd()
    stdout, stderr = _Stream(), _Stream()
    code = 0
    try:
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        sys.argv = ["emokit", *argv]
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return Completed(argv, code, stdout.getvalue(), stderr.getvalue())
