"""What plugins register: pipelines (with parameters and profiles), components, corpora, weights.

A pipeline is a named recipe.  Its parameters have defaults; a *profile* (``paper``,
``quick``, ...) overrides some of them; the user overrides any of them on the command line.
A profile only changes parameters, never the code path.

A parameter is declared once: a :class:`Param` without a default names a parameter of the
pipeline's estimator (``lr``, or nested in scikit-learn's form, ``frame_classifier__lr``) and
takes its default from the estimator the pipeline builds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .contracts import FUSION, PIPELINE_PREFIX
from .errors import EmokitError


def is_random_init(value: Any) -> bool:
    """Whether a weights parameter's value means "no checkpoint": random initialisation."""
    return value is None or str(value).strip().lower() in ("", "none", "random")


class _Inherited:
    def __repr__(self) -> str:
        return "INHERITED"


#: The default of a :class:`Param` declared without one: the estimator's own (see :class:`PipelineSpec`).
INHERITED: Any = _Inherited()


@dataclass(frozen=True)
class Param:
    """A pipeline parameter.  ``weights=True`` marks one naming pretrained weights: a name
    registered with ``emokit weights add`` or a file path, resolved and checksummed by the
    runner, which hands ``build`` a :class:`WeightsRef` (``None``: random initialisation).
    Without a ``default`` (``Param(help="...")``) the parameter is the estimator's parameter of
    the same name, and its default is the estimator's."""

    default: Any = INHERITED
    help: str = ""
    choices: tuple[Any, ...] | None = None
    weights: bool = False

    @property
    def inherited(self) -> bool:
        return self.default is INHERITED

    def coerce(self, name: str, raw: Any) -> Any:
        """Turn a command-line string into the default's type."""
        value = raw
        if isinstance(raw, str):
            kind = type(self.default)
            try:
                if kind is bool:
                    if raw.lower() not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                        raise ValueError(raw)
                    value = raw.lower() in {"1", "true", "yes", "on"}
                elif kind is int:
                    value = int(raw)
                elif kind is float:
                    value = float(raw)
                elif kind in (list, tuple):
                    value = kind(json.loads(raw)) if raw.startswith("[") else kind(
                        type(self.default[0])(v) if self.default else v for v in raw.split(","))
                elif self.default is None:
                    value = _literal(raw)
            except ValueError as exc:
                raise EmokitError(f"parameter {name}={raw!r} is not a valid {kind.__name__}",
                                  f"its default is {self.default!r}") from exc
        if self.choices is not None and value not in self.choices:
            raise EmokitError(f"parameter {name}={value!r} is not one of {list(self.choices)}")
        return value


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _literal(raw: str) -> Any:
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return None if raw.lower() in {"none", "null"} else raw


@dataclass(frozen=True)
class WeightsRef:
    """A resolved checkpoint: where it is and the SHA-256 it was checked against."""

    path: str
    sha256: str
    name: str | None = None

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "sha256": self.sha256}


@dataclass(frozen=True)
class Recipe:
    """A modality pipeline built with concrete parameters: cached extractor + fold-fitted model."""

    extractor: Any
    model: Any


@dataclass(frozen=True)
class Caveat:
    """A measured case where a pipeline's ``profile`` learns less than the ``better`` pipeline,
    which costs less: ``emokit run`` says so in one line when a run of it matches
    (``random_init``: only when it starts from random weights).  ``evidence`` is the measurement,
    in words a user can check (corpus, figures, time)."""

    profile: str
    better: str
    evidence: str
    random_init: bool = True


@dataclass(frozen=True)
class PipelineSpec:
    """A runnable pipeline: ``build(**params)`` returns a :class:`Recipe` (speech, face)
    or a fuser (fusion).  A fuser's ``grid`` gives, per parameter, the values ``emokit
    fuse-grid`` tries (one grid point per combination); a fuser without one is not in the grid.

    ``build`` takes the parameters that have a default in their :class:`Param` by name, and
    the inherited ones (declared without a default) as ``**model_params``: only those a profile
    or the user set (see :meth:`create`), which it applies with ``model.set_params(**model_params)``
    to the model (the fuser) it builds.  An inherited parameter's default is the value of that
    name in ``model.get_params(deep=True)`` of the model built with no ``model_params``.
    ``renamed`` maps former parameter names to current ones, for the hint when a former one is used.
    ``caveats`` are the measured cases where it learns less than a cheaper pipeline (:class:`Caveat`).
    """

    name: str
    modality: str
    summary: str
    build: Callable[..., Any]
    params: Mapping[str, Param] = field(default_factory=dict)
    profiles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    default_profile: str = "quick"
    version: str = "1"
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    renamed: Mapping[str, str] = field(default_factory=dict)
    caveats: Sequence[Caveat] = ()

    def __post_init__(self):
        if self.modality not in PIPELINE_PREFIX:
            raise ValueError(f"pipeline {self.name}: modality must be speech, face or fusion")
        if not self.name.startswith(PIPELINE_PREFIX[self.modality]):
            raise ValueError(f"pipeline {self.name}: name must start with '{PIPELINE_PREFIX[self.modality]}'")
        for profile, values in self.profiles.items():
            unknown = set(values) - set(self.params)
            if unknown:
                raise ValueError(f"pipeline {self.name}: profile {profile} sets undeclared {sorted(unknown)}")
        if set(self.renamed.values()) - set(self.params):
            raise ValueError(f"pipeline {self.name}: renamed to undeclared "
                             f"{sorted(set(self.renamed.values()) - set(self.params))}")
        if self.grid and self.modality != FUSION:
            raise ValueError(f"pipeline {self.name}: only fusers declare a fusion grid")
        if set(self.grid) - set(self.params):
            raise ValueError(f"pipeline {self.name}: its grid sets undeclared {sorted(set(self.grid) - set(self.params))}")

    def choose_profile(self, requested: str | None, overrides: Mapping[str, Any] | None = None,
                       on_gpu: Callable[[str], bool] | None = None) -> tuple[str, str | None]:
        """The profile a run of this pipeline uses and, where it was chosen for the user, why.

        An explicit ``requested`` profile always wins.  Without one, a pipeline that has a
        ``scratch`` profile and a weights parameter picks ``paper`` when the user gives it
        pretrained weights (the recipe they were published for), and otherwise ``scratch``
        where it trains on a GPU and ``quick`` (the scratch recipe cut to a CPU budget) where
        it does not, whether it starts from random weights or from the weights its plugin
        provides by default; ``on_gpu(device)`` says whether the value of its ``device``
        parameter lands on a GPU.  Any other pipeline gets its ``default_profile``.
        """
        weights = [k for k, p in self.params.items() if p.weights]
        if requested or "scratch" not in self.profiles or not weights:
            return (requested or self.default_profile), None
        overrides = overrides or {}
        if any(k in overrides and not is_random_init(overrides[k]) for k in weights):
            return "paper", (f"{self.name}: pretrained weights given, so profile paper (the paper's recipe; "
                             f"--profile to choose another)")
        defaults = [f"{k}={self.default(k)}" for k in weights if k not in overrides and not is_random_init(self.default(k))]
        start = (f"starts from {', '.join(defaults)} (its default; {weights[0]}=none for random initialisation)"
                 if defaults else "no pretrained weights")
        device = overrides.get("device", self.default("device") if "device" in self.params else "auto")
        if on_gpu is not None and on_gpu(str(device)):
            return "scratch", (f"{self.name}: {start}, so profile scratch (augmentation, AdamW, "
                               f"one-cycle schedule, label smoothing; --profile paper for the paper's recipe)")
        return "quick", (f"{self.name}: {start} and no GPU, so profile quick (the scratch recipe cut "
                         f"to a CPU budget; --profile scratch for the full one, --profile paper for the paper's)")

    def caveat(self, profile: str, values: Mapping[str, Any]) -> str | None:
        """The one line ``emokit run`` shows for a run of ``profile`` with resolved ``values``
        that matches one of the ``caveats``; None when none does."""
        random_init = all(is_random_init(values.get(k)) for k, p in self.params.items() if p.weights)
        for c in self.caveats:
            if c.profile == profile and (random_init or not c.random_init):
                start = " from random weights" if c.random_init else ""
                return (f"{self.name} with profile {profile}{start} is known to learn less than {c.better}: "
                        f"{c.evidence}; consider {c.better}")
        return None

    @cached_property
    def defaults(self) -> dict[str, Any]:
        """Every parameter's default.  Where one is inherited, the pipeline is built once with
        its declared defaults (no weights), which imports its estimators: hence lazily."""
        if not any(p.inherited for p in self.params.values()):
            return {k: p.default for k, p in self.params.items()}
        built = self.build(**{k: None if p.weights else p.default for k, p in self.params.items() if not p.inherited})
        model = built.model if isinstance(built, Recipe) else built
        own = model.get_params(deep=True)
        missing = [k for k, p in self.params.items() if p.inherited and k not in own]
        if missing:
            raise ValueError(f"pipeline {self.name}: {missing} are declared without a default, but its "
                             f"{type(model).__name__} has no such parameter")
        return {k: own[k] if p.inherited else p.default for k, p in self.params.items()}

    def default(self, name: str) -> Any:
        """One parameter's default, building the pipeline only where it is inherited."""
        param = self.params[name]
        return self.defaults[name] if param.inherited else param.default

    def resolve(self, profile: str | None, overrides: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Defaults (inherited ones resolved), then the profile, then the user's overrides
        (coerced to the defaults' types): the complete values, as the registry records them."""
        chosen = profile or self.default_profile
        if chosen not in self.profiles:
            # A profile this pipeline lacks (e.g. `paper` on a baseline) means its defaults.
            chosen = self.default_profile if self.default_profile in self.profiles else "default"
        unknown = [key for key in (overrides or {}) if key not in self.params]
        if unknown:
            key = unknown[0]
            from .naming import closest

            hint = self.renamed.get(key) or closest(key, self.params)
            raise EmokitError(f"pipeline {self.name} has no parameter {key!r}",
                              f"did you mean {hint!r}?" if hint else
                              f"its parameters: {', '.join(self.params) or 'none'}")
        values = dict(self.defaults)
        values.update(self.profiles.get(chosen, {}))
        values.update({key: self.coerce(key, raw) for key, raw in (overrides or {}).items()})
        return chosen, values

    def coerce(self, key: str, raw: Any) -> Any:
        """A value given for parameter ``key`` (a command-line string: to its default's type)."""
        param = self.params[key]
        if param.inherited:
            param = replace(param, default=self.defaults[key])
        return param.coerce(f"{self.name}.{key}", raw)

    def create(self, values: Mapping[str, Any]) -> Any:
        """``build`` with resolved ``values``: the parameters with a declared default by name,
        the inherited ones only where they differ from their default."""
        explicit = {k: v for k, v in values.items() if not self.params[k].inherited}
        changed = {k: v for k, v in values.items() if self.params[k].inherited and not _same(v, self.defaults[k])}
        return self.build(**explicit, **changed)

    def config_hash(self, params: Mapping[str, Any]) -> str:
        blob = json.dumps({"pipeline": self.name, "version": self.version, "params": params},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ComponentSpec:
    """A building block created by name, timm-style: ``create(kind, name, **params)``."""

    kind: str  # extractor | recognizer | aggregator | fuser | saliency | face_detector | vad | ...
    name: str
    factory: Callable[..., Any]
    summary: str = ""


@dataclass(frozen=True)
class CorpusSpec:
    """``load(path, **options)`` returns a :class:`~emokit_core.contracts.Corpus`.

    A corpus that needs no path (``needs_path=False``: generated on first use, like
    ``demo``) is also given ``progress(done, total)`` and ``workers`` keyword arguments.
    """

    name: str
    load: Callable[..., Any]
    summary: str = ""
    needs_path: bool = True


@dataclass(frozen=True)
class WeightsSpec:
    """Pretrained weights a plugin provides under a name that pipelines take as
    ``weights=NAME``: a file it ships in its own package, or one it finds in another installed
    distribution (e.g. a wheel installed with ``--no-deps`` for its weights alone).

    ``locate()`` returns the file's path, or raises :class:`~emokit_core.errors.WeightsError`
    saying how to install it; the file must have SHA-256 ``sha256``, checked at every use.
    ``architecture`` names the network the file fits, ``source`` where it comes from and
    ``licence`` its licence (both shown by ``emokit weights list``); ``provenance`` is what
    made it (plain data, e.g. what ``emokit pretrain`` records)."""

    name: str
    architecture: str
    locate: Callable[[], Path]
    sha256: str
    source: str
    licence: str
    summary: str = ""
    provenance: Mapping[str, Any] = field(default_factory=dict)


def lazy(target: str) -> Callable[..., Any]:
    """``"package.module:attr"`` -> a factory that imports it on first call, so that
    registering a component costs no import of heavy libraries at start-up."""
    module_name, _, attr = target.partition(":")

    def factory(*args: Any, **kwargs: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module_name), attr)(*args, **kwargs)

    factory.__qualname__ = factory.__name__ = attr
    factory.__doc__ = f"Lazily imported {target}."
    return factory
