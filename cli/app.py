"""The ``emokit`` application: command groups, plugin commands, one-line errors."""

from __future__ import annotations

import os
import sys

import typer

from . import data, evaluate, fusion, plugins, predict, pretrain, report, results, run, weights

app = typer.Typer(name="emokit", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Multimodal (speech + face) emotion recognition: plugins, subject-wise CV, a model registry.")
# Every command module adds its commands (or its command group) the same way.
for module in (run, results, evaluate, report, fusion, predict, pretrain, plugins, data, weights):
    module.register(app)


_plugin_commands_added = False


def _add_plugin_commands() -> None:
    global _plugin_commands_added
    if _plugin_commands_added:  # main() may run more than once in a process (tests, embedding)
        return
    from emokit_core.plugins import get_host

    get_host().add_commands(app)
    _plugin_commands_added = True


def main(argv: list[str] | None = None) -> None:
    """The console script; ``argv`` (default: the process's arguments) for running it in-process."""
    from emokit_core.errors import EmokitError

    try:
        _add_plugin_commands()
        app(args=argv, prog_name="emokit", standalone_mode=False)
    except EmokitError as exc:
        if os.environ.get("EMOKIT_TRACEBACK"):
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted; finished folds are in the registry and a rerun resumes from there", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # typer's usage errors (click exceptions) and anything unexpected
        if hasattr(exc, "exit_code") and hasattr(exc, "show"):  # click.ClickException
            exc.show()
            sys.exit(exc.exit_code)
        if type(exc).__name__ in ("Exit", "Abort"):  # click.exceptions.Exit / Abort
            sys.exit(getattr(exc, "exit_code", 1))
        if os.environ.get("EMOKIT_TRACEBACK"):
            raise
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("hint: this is a bug in emokit or a plugin; rerun with EMOKIT_TRACEBACK=1 and report the traceback",
              file=sys.stderr)
        sys.exit(1)
