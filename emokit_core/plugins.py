"""Plugin loading: entry points in group ``emokit`` -> pluggy -> the core's tables.

Built-in plugins come through the same entry points as third-party ones.  Each plugin is
loaded and asked for its registrations on its own, so one that fails to import, declares
an incompatible API version, implements a misspelt hook or raises inside a hook is
reported and skipped while the others load.  A name registered twice stays unusable and
using it raises an error naming both plugins.
"""

from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any, Callable, Iterable, Mapping

import pluggy

from . import PLUGIN_API_VERSION, __version__, hookspecs
from .errors import PluginError, UnknownNameError
from .naming import closest
from .specs import ComponentSpec, CorpusSpec, PipelineSpec, WeightsSpec

ENTRY_POINT_GROUP = "emokit"

# The emokit releases that provide each plugin API version: (first, last or None while current).
# Bump PLUGIN_API_VERSION (emokit_core/__init__.py) and close / add a row here together.
API_RELEASES: dict[int, tuple[str, str | None]] = {1: ("0.1.0", None)}

_TABLE_HOOKS = {
    "pipeline": ("register_pipelines", PipelineSpec),
    "component": ("register_components", ComponentSpec),
    "corpus": ("register_corpora", CorpusSpec),
    "weights": ("register_weights", WeightsSpec),
}
_HOOK_NAMES = (*(hook for hook, _ in _TABLE_HOOKS.values()), "register_commands")


def _names(value: str | None) -> set[str]:
    return {n.strip() for n in (value or "").split(",") if n.strip()}


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str
    version: str
    registered: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None
    api: int | None = None  # the EMOKIT_PLUGIN_API it declares (None: undeclared, taken as current)
    disabled: str | None = None  # why it was not loaded (EMOKIT_PLUGINS_DISABLE or _ALLOW)
    unmarked: list[str] = field(default_factory=list)  # hook-named functions without @hookimpl (not called)

    @property
    def source(self) -> str:
        return f"plugin {self.name!r} ({self.distribution} {self.version})"


@dataclass(frozen=True)
class PluginSource:
    """Where a plugin comes from: an entry point, or a module handed in directly (tests)."""

    name: str
    module: str
    distribution: str
    version: str
    load: Callable[[], ModuleType]


def entry_point_sources() -> list[PluginSource]:
    sources = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        sources.append(PluginSource(
            name=ep.name, module=ep.value,
            distribution=dist.metadata["Name"] if dist else "?",
            version=dist.version if dist else "?", load=ep.load))
    return sorted(sources, key=lambda s: (s.distribution != "emokit", s.distribution, s.name))


def module_source(module: ModuleType | str, distribution: str = "local", version: str = "0") -> PluginSource:
    name = module if isinstance(module, str) else module.__name__
    load = (lambda: importlib.import_module(name)) if isinstance(module, str) else (lambda: module)
    return PluginSource(name=name.rsplit(".", 1)[-1], module=name, distribution=distribution,
                        version=version, load=load)


class PluginHost:
    """Loads plugins and keeps the tables of what they registered."""

    def __init__(self, sources: Iterable[PluginSource] | None = None, *,
                 environ: Mapping[str, str] | None = None):
        """``environ`` (default ``os.environ``) may switch plugins off without uninstalling them:
        ``EMOKIT_PLUGINS_DISABLE=name,...`` skips those; ``EMOKIT_PLUGINS_ALLOW=name,...`` loads
        only those."""
        environ = os.environ if environ is None else environ
        self.disable = _names(environ.get("EMOKIT_PLUGINS_DISABLE"))
        self.allow = _names(environ.get("EMOKIT_PLUGINS_ALLOW")) or None
        self.pm = pluggy.PluginManager("emokit")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.tables: dict[str, dict[str, Any]] = {kind: {} for kind in _TABLE_HOOKS}
        self.owners: dict[tuple[str, str], PluginInfo] = {}
        self.conflicts: dict[tuple[str, str], list[PluginInfo]] = {}
        self._modules: dict[str, ModuleType] = {}
        for source in entry_point_sources() if sources is None else sources:
            self._load(source)

    # -- loading --------------------------------------------------------------------------
    def _load(self, source: PluginSource) -> None:
        info = PluginInfo(source.name, source.module, source.distribution, source.version)
        self.plugins.append(info)
        if source.name in self.disable:
            info.disabled = "listed in EMOKIT_PLUGINS_DISABLE"
            return
        if self.allow is not None and source.name not in self.allow:
            info.disabled = "not listed in EMOKIT_PLUGINS_ALLOW"
            return
        try:
            module = source.load()
            declared = getattr(module, "EMOKIT_PLUGIN_API", None)
            info.api = declared if type(declared) is int else None  # shown by `emokit plugins`, even when skipped
            check_api(declared, info)
            self.pm.register(module, name=info.name)
            try:
                self.pm.check_pending()
            except pluggy.PluginValidationError:
                self.pm.unregister(module)
                raise
        except Exception as exc:  # noqa: BLE001 - any failure of a plugin is reported, never fatal
            info.error = _describe(exc)
            return
        self._modules[info.name] = module
        info.unmarked = [name for name in _HOOK_NAMES
                         if callable(getattr(module, name, None)) and self._impl(info, name) is None]
        for kind, (hook_name, spec_type) in _TABLE_HOOKS.items():
            self._register_tables(info, kind, hook_name, spec_type)

    def _impl(self, info: PluginInfo, hook_name: str) -> Callable[..., Any] | None:
        """The plugin's ``@hookimpl`` of ``hook_name`` as pluggy registered it; a function of that
        name without the marker is not one (pytest #3775's trap) and is never called."""
        caller = getattr(self.pm.hook, hook_name)
        return next((impl.function for impl in caller.get_hookimpls() if impl.plugin_name == info.name), None)

    def _register_tables(self, info: PluginInfo, kind: str, hook_name: str, spec_type: type) -> None:
        # One plugin's hook at a time, so that a hook that fails is rolled back alone.
        impl = self._impl(info, hook_name)
        if impl is None:
            return
        added: list[str] = []

        def register(spec: Any) -> None:
            if not isinstance(spec, spec_type):
                raise PluginError(f"{hook_name} of {info.source} registered {type(spec).__name__}, "
                                  f"expected {spec_type.__name__}")
            key = spec.name if kind != "component" else f"{spec.kind}:{spec.name}"
            if (kind, key) in self.conflicts:
                self.conflicts[(kind, key)].append(info)
                return
            if key in self.tables[kind]:
                first = self.owners[(kind, key)]
                self.conflicts[(kind, key)] = [first, info]
                del self.tables[kind][key]
                return
            self.tables[kind][key] = spec
            self.owners[(kind, key)] = info
            added.append(key)

        try:
            impl(register)
        except Exception as exc:  # noqa: BLE001
            for key in added:  # a hook that failed half-way registers nothing
                self.tables[kind].pop(key, None)
                self.owners.pop((kind, key), None)
            info.error = f"{hook_name} failed: {_describe(exc)}"
            return
        if added:
            info.registered.setdefault(kind, []).extend(added)

    def add_commands(self, app: Any) -> None:
        for info in self.plugins:
            impl = self._impl(info, "register_commands") if info.name in self._modules else None
            if impl is None:
                continue
            try:
                impl(app)
            except Exception as exc:  # noqa: BLE001
                info.error = f"register_commands failed: {_describe(exc)}"

    # -- lookups --------------------------------------------------------------------------
    @property
    def pipelines(self) -> dict[str, PipelineSpec]:
        return self.tables["pipeline"]

    @property
    def corpora(self) -> dict[str, CorpusSpec]:
        return self.tables["corpus"]

    @property
    def weights(self) -> dict[str, WeightsSpec]:
        return self.tables["weights"]

    def problems(self) -> list[str]:
        lines = [f"{p.source} was skipped: {p.error}" for p in self.plugins if p.error]
        lines += [f"{p.source} defines {name} without @hookimpl, so emokit does not call it "
                  f"(decorate it with emokit_core.hookspecs.hookimpl)" for p in self.plugins for name in p.unmarked]
        for (kind, key), owners in self.conflicts.items():
            lines.append(f"{kind} {key!r} is registered by both " + " and ".join(o.source for o in owners))
        return lines

    def _lookup(self, kind: str, key: str, shown: str, everything: Iterable[str], hint_all: str) -> Any:
        if (kind, key) in self.conflicts:
            owners = self.conflicts[(kind, key)]
            raise PluginError(f"{kind} {shown!r} is registered by both "
                              + " and ".join(o.source for o in owners),
                              "uninstall one of them (pip uninstall ...)")
        try:
            return self.tables[kind][key]
        except KeyError:
            suggestion = closest(shown, everything)
            raise UnknownNameError(f"unknown {kind} {shown!r}",
                                   f"did you mean {suggestion!r}?" if suggestion else hint_all) from None

    def pipeline(self, name: str) -> PipelineSpec:
        return self._lookup("pipeline", name, name, self.pipelines, "see `emokit pipelines`")

    def corpus(self, name: str) -> CorpusSpec:
        return self._lookup("corpus", name, name, self.corpora, "see `emokit plugins`")

    def read_corpus(self, name: str, path: Any = None, **options: Any) -> Any:
        """The corpus ``name`` of the corpus table read from ``path`` (a generated one such as
        ``demo`` is made there on first use), marked with the reader that read it so that the
        registry can record it and a report can read the clips' media again."""
        corpus = self.corpus(name).load(path, **options)
        if getattr(corpus, "reader", None) is None:
            corpus.reader = name
            # what reads the same clips again; progress callbacks and worker counts do not matter
            corpus.reader_options = {k: v for k, v in options.items()
                                     if k not in ("progress", "workers") and isinstance(v, (str, int, float, bool, list, tuple))}
        return corpus

    def component(self, kind: str, name: str) -> ComponentSpec:
        names = [k.split(":", 1)[1] for k in self.tables["component"] if k.startswith(kind + ":")]
        return self._lookup("component", f"{kind}:{name}", name, names, f"known {kind}s: {', '.join(names)}")

    def owner(self, kind: str, key: str) -> PluginInfo | None:
        return self.owners.get((kind, key))


def api_releases(api: int) -> str | None:
    """The emokit releases that provide plugin API ``api``, in words; None if none does."""
    if api not in API_RELEASES:
        return None
    first, last = API_RELEASES[api]
    return f"emokit {first} and later" if last is None else f"emokit {first} to {last}"


def check_api(declared: Any, info: PluginInfo) -> None:
    """Accept a plugin's ``EMOKIT_PLUGIN_API`` (None: undeclared, taken as current) or raise a
    :class:`PluginError` that says which emokit releases it needs."""
    if declared is None or (type(declared) is int and declared == PLUGIN_API_VERSION):
        return
    if type(declared) is not int:
        raise PluginError(f"{info.source} declares EMOKIT_PLUGIN_API = {declared!r}, which is not an integer",
                          f"its authors should set EMOKIT_PLUGIN_API = {PLUGIN_API_VERSION} "
                          f"(this emokit's plugin API)")
    here = f"this emokit {__version__} provides API {PLUGIN_API_VERSION}"
    if declared > PLUGIN_API_VERSION:
        raise PluginError(f"{info.source} needs plugin API {declared}, newer than this emokit {__version__}, "
                          f"which provides API {PLUGIN_API_VERSION} ({api_releases(PLUGIN_API_VERSION)})",
                          f"upgrade emokit (pip install -U emokit), or install a release of "
                          f"{info.distribution} written for plugin API {PLUGIN_API_VERSION}")
    releases = api_releases(declared)
    upgrade = f"upgrade {info.distribution} to a release written for plugin API {PLUGIN_API_VERSION}"
    if releases is None:
        raise PluginError(f"{info.source} needs plugin API {declared}, which no emokit release provides; {here}",
                          upgrade)
    raise PluginError(f"{info.source} needs plugin API {declared}, provided by {releases}; {here}",
                      f"install {releases} for it, or {upgrade}")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@functools.lru_cache(maxsize=1)
def get_host() -> PluginHost:
    """The process-wide plugin host, loaded on first use."""
    return PluginHost()


def create(kind: str, name: str, **params: Any) -> Any:
    """Create a registered component by name, timm-style: ``create("aggregator", "vote")``."""
    return get_host().component(kind, name).factory(**params)
