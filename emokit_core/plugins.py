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
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any, Callable, Iterable

import pluggy

from . import PLUGIN_API_VERSION, hookspecs
from .errors import PluginError, UnknownNameError
from .naming import closest
from .specs import ComponentSpec, CorpusSpec, PipelineSpec

ENTRY_POINT_GROUP = "emokit"
_TABLE_HOOKS = {
    "pipeline": ("register_pipelines", PipelineSpec),
    "component": ("register_components", ComponentSpec),
    "corpus": ("register_corpora", CorpusSpec),
}


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str
    version: str
    registered: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

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

    def __init__(self, sources: Iterable[PluginSource] | None = None):
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
        try:
            module = source.load()
            wanted = getattr(module, "EMOKIT_PLUGIN_API", PLUGIN_API_VERSION)
            if int(wanted) != PLUGIN_API_VERSION:
                raise PluginError(
                    f"{info.source} needs plugin API {wanted}, this emokit provides {PLUGIN_API_VERSION}",
                    f"install an emokit whose plugin API is {wanted}, or a release of "
                    f"{info.distribution} written for API {PLUGIN_API_VERSION}")
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
        for kind, (hook_name, spec_type) in _TABLE_HOOKS.items():
            self._collect(info, module, kind, hook_name, spec_type)

    def _collect(self, info: PluginInfo, module: ModuleType, kind: str, hook_name: str, spec_type: type) -> None:
        impl = getattr(module, hook_name, None)
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
            module = self._modules.get(info.name)
            impl = getattr(module, "register_commands", None) if module else None
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

    def problems(self) -> list[str]:
        lines = [f"{p.source} was skipped: {p.error}" for p in self.plugins if p.error]
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

    def component(self, kind: str, name: str) -> ComponentSpec:
        names = [k.split(":", 1)[1] for k in self.tables["component"] if k.startswith(kind + ":")]
        return self._lookup("component", f"{kind}:{name}", name, names, f"known {kind}s: {', '.join(names)}")

    def owner(self, kind: str, key: str) -> PluginInfo | None:
        return self.owners.get((kind, key))


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
