"""Reading pretrained checkpoints safely, for every network plugin.

Files are unpickled only with ``torch.load(weights_only=True)`` (tensors, plain containers and
numpy arrays); anything else, a damaged file, or a dict that is not a state dict of tensors
raises :class:`~emokit_core.errors.WeightsError` naming the file, with the plugin's hint.
torch is imported only when a checkpoint is read.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .errors import WeightsError


def describe_keys(keys: list[str], limit: int = 5) -> str:
    """The first ``limit`` keys and how many more there are."""
    shown = ", ".join(keys[:limit])
    return shown + (f", … (+{len(keys) - limit} more)" if len(keys) > limit else "")


def _numpy_safe_globals() -> list:
    """numpy arrays, scalars and dtypes, allowed in a weights-only load (training checkpoints often
    carry a sampler state made of them); object arrays still go through the restricted unpickler."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    allowed: list = [np.ndarray, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):  # pickles from numpy 1.x and 2.x
        allowed += [(core.multiarray._reconstruct, f"{module}._reconstruct"),
                    (core.multiarray.scalar, f"{module}.scalar")]
    return allowed


def read_checkpoint(path: Path, hint: str) -> tuple[Any, str]:
    """``torch.load(weights_only=True)`` of a file on the CPU -> (object, SHA-256 of the file)."""
    import pickle

    import torch

    source = f"weights file {path}"
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise WeightsError(f"{source} does not exist or cannot be opened: {exc.strerror or exc}", hint) from exc
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if refused:  # a valid pickle that needs a class a weights-only load will not import
            raise WeightsError(f"{source} holds pickled Python objects other than tensors and plain containers "
                               f"({refused.group(1)}); only weights-only checkpoints are unpickled",
                               hint + "; or re-save just its state dict") from exc
        raise WeightsError(f"{source} cannot be read as a torch checkpoint; it may be truncated or corrupt "
                           f"({type(exc).__name__})", hint) from exc
    except Exception as exc:  # zip / EOF / runtime errors from a damaged file
        raise WeightsError(f"{source} cannot be read as a torch checkpoint; it may be truncated or corrupt "
                           f"({type(exc).__name__}: {exc})"[:400], hint) from exc
    return obj, sha256


def load_state(path_or_state: Any, hint: str, wrappers: Iterable[str] = ("model", "state_dict")
               ) -> tuple[dict[str, Any], list[str], str, str | None]:
    """A file or a mapping -> (state dict of tensors, other top-level keys, source for messages,
    SHA-256 of the file or None).  A state dict nested under one of ``wrappers`` is unwrapped;
    keys saved from ``DataParallel`` lose their ``module.`` prefix."""
    import torch

    sha256 = None
    if isinstance(path_or_state, Mapping):
        obj, source = path_or_state, "the given state dict"
    elif isinstance(path_or_state, (str, Path)):
        source = f"weights file {path_or_state}"
        obj, sha256 = read_checkpoint(Path(path_or_state), hint)
    else:
        raise TypeError(f"expected a path or a state dict, got {type(path_or_state).__name__}")
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{source} holds a {type(obj).__name__}, not a state dict", hint)
    extra: list[str] = []
    for wrapper in wrappers:
        if isinstance(obj.get(wrapper), Mapping):
            extra = sorted(str(k) for k in obj if k != wrapper)
            obj = obj[wrapper]
            break
    bad = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad or not obj:
        raise WeightsError(f"{source} is not a state dict of tensors"
                           + (f" (non-tensor entries: {describe_keys(bad)})" if bad else " (it is empty)"), hint)
    state = {str(k): v for k, v in obj.items()}
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state, extra, source, sha256


def key_differences(expected: Mapping[str, Any], state: Mapping[str, Any]) -> list[str]:
    """Missing keys (``num_batches_tracked`` may be absent), unexpected keys and shape mismatches,
    as message parts; empty when ``state`` fits."""
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    mismatched = [f"{k}: file {list(state[k].shape)} vs model {list(v.shape)}"
                  for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key{'s' if len(missing) > 1 else ''} ({describe_keys(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key{'s' if len(unexpected) > 1 else ''} "
                     f"({describe_keys(unexpected)})")
    if mismatched:
        parts.append(f"{len(mismatched)} shape mismatch{'es' if len(mismatched) > 1 else ''} "
                     f"({describe_keys(mismatched, 3)})")
    return parts


def packaged_file(package: str, relative: str) -> Callable[[], Path]:
    """A locator of a file shipped inside an installed package (``WeightsSpec.locate``)."""

    def locate() -> Path:
        from importlib.util import find_spec

        spec = find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise WeightsError(f"package {package} is not installed, so its weights {relative} are missing",
                               f"reinstall the distribution that provides {package}")
        file = Path(next(iter(spec.submodule_search_locations))) / relative
        if not file.is_file():
            raise WeightsError(f"{file} is missing from the installed package {package}",
                               f"reinstall the distribution that provides {package}")
        return file

    return locate


def distribution_file(distribution: str, relative: str, requirement: str) -> Callable[[], Path]:
    """A locator of a file inside another installed distribution, found through its metadata,
    never by importing it (its own dependencies need not be installed); ``requirement`` is
    what to install where it is missing, e.g. ``resemblyzer==0.1.4``."""

    def locate() -> Path:
        from importlib import metadata

        hint = f"pip install --no-deps {requirement} (only its weights file is used)"
        try:
            dist = metadata.distribution(distribution)
        except metadata.PackageNotFoundError:
            raise WeightsError(f"the distribution {distribution} that holds these weights ({relative}) "
                               f"is not installed", hint) from None
        file = Path(dist.locate_file(relative))
        if not file.is_file():
            raise WeightsError(f"{file} is missing from the installed {distribution} {dist.version}", hint)
        return file

    return locate
