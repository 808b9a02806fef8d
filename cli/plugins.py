"""``emokit plugins`` and ``emokit pipelines``: what is installed and what can run."""

from __future__ import annotations

from typing import List, Optional

import typer

from .common import JsonOption, err, out, print_json


def plugins_command(as_json: bool = JsonOption) -> None:
    """List plugins: distribution, version, what each registers, any that failed, and any switched off
    with EMOKIT_PLUGINS_DISABLE=name,... or EMOKIT_PLUGINS_ALLOW=name,..."""
    from emokit_core import PLUGIN_API_VERSION, __version__
    from emokit_core.plugins import api_releases, get_host

    host = get_host()
    if as_json:
        print_json({"emokit": __version__, "plugin_api": PLUGIN_API_VERSION,
                    "plugins": [vars(p) for p in host.plugins], "problems": host.problems()})
        return
    from rich.table import Table

    table = Table(title=f"emokit {__version__} plugins (plugin API {PLUGIN_API_VERSION})", title_justify="left")
    for column in ("plugin", "distribution", "version", "API", "registers", "status"):
        table.add_column(column)
    for p in host.plugins:
        registers = "\n".join(f"{kind}: {', '.join(names)}" for kind, names in p.registered.items()) or "-"
        api = "-" if p.api is None else f"{p.api} ({api_releases(p.api) or 'no emokit release'})"
        status = (f"[dim]disabled: {p.disabled}[/]" if p.disabled else f"[red]skipped: {p.error}[/]" if p.error
                  else "[green]ok[/]")
        table.add_row(p.name, p.distribution, p.version, api, registers, status)
    out.print(table)
    for problem in host.problems():
        err.print(f"[yellow]warning:[/] {problem}", highlight=False)

def pipelines_command(names: Optional[List[str]] = typer.Argument(
                          None, help="pipelines to show with every default (a default a pipeline takes from its "
                                     "estimator is read by building it, which imports it)"),
                      as_json: bool = JsonOption) -> None:
    """List runnable pipelines with their parameters and profiles; name some to see every default."""
    from emokit_core.plugins import get_host

    host = get_host()
    chosen = [host.pipeline(n) for n in names] if names else [host.pipelines[n] for n in sorted(
        host.pipelines, key=lambda n: ({"speech": 0, "face": 1, "fuse": 2}.get(n.split(".")[0], 3), n))]
    rows = []
    for spec in chosen:
        owner = host.owner("pipeline", spec.name)
        params = {}
        for k, p in spec.params.items():
            params[k] = {"help": p.help, "inherited": p.inherited}
            if names or not p.inherited:  # the list imports no estimator to read the inherited ones
                params[k]["default"] = spec.default(k)
        rows.append({"name": spec.name, "modality": spec.modality, "summary": spec.summary,
                     "plugin": owner.distribution if owner else "?", "params": params,
                     "profiles": {k: dict(v) for k, v in spec.profiles.items()},
                     "default_profile": spec.default_profile})
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title="emokit pipelines", title_justify="left", show_lines=True)
    for column in ("pipeline", "what it does", "parameters (default)", "profiles"):
        table.add_column(column)
    for row in rows:
        params = "\n".join(f"{k}={v['default']!r}" if "default" in v else f"{k} [dim](the estimator's)[/]"
                           for k, v in row["params"].items()) or "-"
        profiles = "\n".join(
            f"{k}{' (default)' if k == row['default_profile'] else ''}"
            + (": " + ", ".join(f"{pk}={pv!r}" for pk, pv in v.items()) if v else "")
            for k, v in row["profiles"].items()) or "-"
        table.add_row(row["name"], f"{row['summary']}\n[dim]{row['plugin']}[/]", params, profiles)
    out.print(table)
    if not names and any("default" not in v for row in rows for v in row["params"].values()):
        err.print("parameters marked (the estimator's) take their default from the pipeline's estimator: "
                  "`emokit pipelines NAME` shows it", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins_command)
    app.command("pipelines")(pipelines_command)
