"""The arrows of the layout: the core and the CLI reach plugins only through the plugin tables,
and a plugin reaches another plugin's components only by name (``create(kind, name)``)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in ``path``; relative imports keep their leading dots."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "." * node.level + (node.module or "")))
    return found


def test_the_core_and_the_cli_import_no_plugin():
    offenders = [f"{path.relative_to(ROOT)}:{line} imports {module}"
                 for folder in ("emokit_core", "cli") for path in sorted((ROOT / folder).rglob("*.py"))
                 for line, module in _imports(path)
                 if module == "emokit_plugins" or module.startswith(("emokit_plugins.", "plugins."))]
    assert offenders == []


def test_no_plugin_imports_another():
    packages = sorted(p for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").exists())
    assert {p.name for p in packages} >= {"baselines", "corpora", "face", "fusion", "speech"}
    offenders = []
    for package in packages:
        for path in sorted(package.rglob("*.py")):
            for line, module in _imports(path):
                absolute = module.startswith("emokit_plugins.") and module.split(".")[1] != package.name
                upward = module.startswith("..")  # out of its own package
                if absolute or upward:
                    offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert offenders == []


def test_the_check_sees_an_offending_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from emokit_plugins.speech.vad import VadTrim\n    from ..speech import vad\n")
    assert _imports(bad) == [(2, "emokit_plugins.speech.vad"), (3, "..speech")]
