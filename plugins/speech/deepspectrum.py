"""DeepSpectrum-style spectrogram images and ImageNet AlexNet features (fc7).

DeepSpectrum (Amiriparian et al., 2017; https://github.com/DeepSpectrum/DeepSpectrum)
plots a spectrogram of the whole clip as a picture without axes or margins and feeds it to an
ImageNet CNN; the paper (Luna-Jiménez et al., 2021, sections 3.2 and 4.1) uses its mel
spectrogram images at 16 kHz with AlexNet and takes the 4096-d ``fc7`` activations as the
clip's embedding (feature extraction + SVM), or fine-tunes AlexNet on the same images.

This module re-implements that front-end without a matplotlib figure, so it is
deterministic and cheap (a few milliseconds for a 4-s clip), and wraps torchvision's AlexNet
so that torchvision's ImageNet state dict (``alexnet-owt-7be5be79.pth``) loads unchanged.

DeepSpectrum's mel-plot defaults, as read in its source (``src/deepspectrum/backend/plotting.py``,
``src/deepspectrum/cli/configuration.py``, ``src/deepspectrum/cli/deep.conf``; librosa 0.7
as pinned by its ``setup.py``), and what :func:`spectrogram_image` does with them:

* FFT length: the next power of two of 25 ms of audio (512 samples = 32 ms at 16 kHz),
  periodic Hann window of that length, hop = half of it (256 samples = 16 ms),
  ``center=False`` (no padding at the edges); power spectrum ``|STFT|**2``.
* Mel bands: 128 (``--number-of-melbands``), Slaney mel scale and Slaney area
  normalisation (librosa's defaults), 0 Hz to the Nyquist frequency (8 kHz at 16 kHz).
* dB: ``10 log10(max(S, 1e-10))`` relative to the clip's maximum (``ref=np.max``) and
  **no** ``top_db`` floor (``top_db=None``).
* Colours: the ``viridis`` colour map, scaled from the clip's minimum to its maximum dB
  (matplotlib's default normalisation of ``pcolormesh``), 256-entry lookup table.
* Picture: a 1x1-inch figure saved at ``dpi=size`` (227 px, ``[main] size = 227``) with one
  axes filling it and no axis, ticks or margins; PNG read back as RGB (alpha dropped).
  librosa's ``specshow(y_axis="mel")`` places each mel band between consecutive points of
  ``mel_frequencies(n_mels + 2, fmax=fmax)[1:]`` and draws the frequency axis with
  matplotlib's ``symlog`` scale (linear below 1 kHz, log base 2 above; ``linthresh=1000``),
  low frequencies at the bottom; each STFT frame has the same width along time.
  We sample that same geometry at the pixel centres (what Agg's non-antialiased
  ``pcolormesh`` does), so the result agrees with a figure rendering pixel for pixel up to
  pixels that straddle a band or frame boundary.

Deviations from DeepSpectrum, all deliberate:

* A clip shorter than one FFT window is zero-padded to one window (DeepSpectrum skips it).
* Integer PCM is scaled to [-1, 1] (DeepSpectrum reads audio with librosa, which does the same).
* ``fmax`` below the Nyquist frequency limits the mel filterbank and the picture to
  ``fmax`` (DeepSpectrum's ``--frequency-limit`` crops the STFT but keeps the filterbank
  at Nyquist); at 16 kHz with ``fmax=8000`` both are the same.
* ``top_db`` is available (default ``None``, DeepSpectrum's behaviour).

AlexNet: DeepSpectrum's own PyTorch extractor takes ``classifier[:-2]`` of torchvision's
AlexNet, i.e. fc7 *before* its ReLU, and feeds ``image / 255`` in BGR channel order without
mean/std normalisation; the original Caffe AlexNet of DeepSpectrum's 2017 paper, whose
``relu7`` works in place on the ``fc7`` blob, gave fc7 *after* the ReLU. :class:`AlexNetFeatures`
returns fc7 after its ReLU (``classifier[5]``) with torchvision's ImageNet mean/std
normalisation by default; ``relu=False`` and ``preprocessing="deepspectrum"`` reproduce the
PyTorch DeepSpectrum extractor instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emokit_core.checkpoints import key_differences, load_state
from emokit_core.errors import MediaError, WeightsError
from emokit_core.melscale import hz_to_mel, mel_filterbank, mel_to_hz, power_spectrogram, power_to_db

__all__ = [
    "WeightsError",
    "spectrogram_image",
    "log_mel_spectrogram",
    "slaney_mel_filterbank",
    "AlexNetFeatures",
    "load_alexnet_weights",
    "alexnet_classifier",
    "normalise_images",
    "fc7_features",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FC7_DIM",
]

#: torchvision's ImageNet normalisation (RGB order, for images in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Width of AlexNet's fc7 layer.
FC7_DIM = 4096

_AMIN = 1e-10  # librosa's power floor before the logarithm

_WEIGHTS_HINT = ("expects torchvision's ImageNet AlexNet state dict (keys features.0.weight ... "
                 "classifier.6.bias), e.g. alexnet-owt-7be5be79.pth of torchvision's "
                 "AlexNet_Weights.IMAGENET1K_V1, saved with torch.save(model.state_dict())")


# --------------------------------------------------------------------------------------
# Spectrogram front-end (numpy only)
# --------------------------------------------------------------------------------------

def _mel_points(n: int, fmin: float, fmax: float) -> np.ndarray:
    """``n`` frequencies equally spaced on the Slaney mel scale from ``fmin`` to ``fmax``."""
    return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n))


def slaney_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                          fmax: float | None = None) -> np.ndarray:
    """DeepSpectrum's filters: Slaney scale and area normalisation (librosa's defaults),
    ``[n_mels, n_fft // 2 + 1]``, from the shared front end."""
    return mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, scale="slaney", norm="slaney")


def _frame_params(sample_rate: int, window_ms: float | None, hop_ms: float | None) -> tuple[int, int]:
    if window_ms is None:  # DeepSpectrum: next power of two of 25 ms
        n_fft = 1 << (int(sample_rate * 0.025) - 1).bit_length()
    else:
        n_fft = int(round(sample_rate * window_ms / 1000.0))
    hop = n_fft // 2 if hop_ms is None else int(round(sample_rate * hop_ms / 1000.0))
    if n_fft < 2 or hop < 1:
        raise ValueError(f"window of {n_fft} samples / hop of {hop} samples is too short "
                         f"at {sample_rate} Hz")
    return n_fft, hop


@lru_cache(maxsize=16)
def _cached_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmax: float):
    # Sparse (each FFT bin feeds at most two bands): ~10x fewer multiplications than the
    # dense product, and no multi-threaded BLAS call, which costs more than it saves on
    # matrices this small when other threads compete for the cores.
    from scipy.sparse import csr_matrix

    return csr_matrix(slaney_mel_filterbank(sample_rate, n_fft, n_mels, 0.0, fmax))


def _as_float_audio(audio) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim == 2 and 1 in audio.shape:
        audio = audio.reshape(-1)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio of shape [samples], got shape {audio.shape}")
    if np.issubdtype(audio.dtype, np.integer):
        audio = audio.astype(np.float64) / float(np.iinfo(audio.dtype).max)
    else:
        audio = audio.astype(np.float64, copy=False)
    if not np.all(np.isfinite(audio)):
        raise MediaError("audio holds NaN or infinite samples", hint="check the decoder or the resampler")
    return audio


def log_mel_spectrogram(audio: np.ndarray, sample_rate: int = 16000, *, n_mels: int = 128,
                        window_ms: float | None = None, hop_ms: float | None = None,
                        fmax: float | None = 8000.0, top_db: float | None = None) -> np.ndarray:
    """DeepSpectrum's log-mel spectrogram: ``[n_mels, frames]`` float64 in dB, maximum 0.

    Parameters as :func:`spectrogram_image`. Row 0 is the lowest mel band.
    """
    audio = _as_float_audio(audio)
    n_fft, hop = _frame_params(sample_rate, window_ms, hop_ms)
    nyquist = sample_rate / 2.0
    fmax = nyquist if fmax is None else min(float(fmax), nyquist)
    power = power_spectrogram(audio, n_fft, hop)                                # [frames, bins]
    mel = np.asarray(_cached_filterbank(sample_rate, n_fft, n_mels, fmax) @ power.T)  # [n_mels, frames]
    db = power_to_db(mel, amin=_AMIN, ref="max", top_db=top_db)
    return db


def _symlog(hz: np.ndarray, linthresh: float = 1000.0, base: float = 2.0) -> np.ndarray:
    """matplotlib's ``symlog`` transform (``linscale=1``), as librosa's mel axis uses it."""
    hz = np.asarray(hz, dtype=np.float64)
    adj = 1.0 / (1.0 - 1.0 / base)
    with np.errstate(divide="ignore"):
        log_part = linthresh * (adj + np.log(np.maximum(np.abs(hz), 1e-300) / linthresh) / np.log(base))
    return np.where(np.abs(hz) <= linthresh, hz * adj, np.sign(hz) * log_part)


@lru_cache(maxsize=16)
def _row_bands(n_mels: int, fmax: float, size: int) -> np.ndarray:
    """Mel band shown by each pixel row, top row first (librosa 0.7's mel axis geometry)."""
    edges = _symlog(_mel_points(n_mels + 2, 0.0, fmax)[1:])     # n_mels + 1 band edges, bottom to top
    centres = edges[-1] - (np.arange(size) + 0.5) / size * (edges[-1] - edges[0])
    bands = np.clip(np.searchsorted(edges, centres, side="right") - 1, 0, n_mels - 1)
    bands.setflags(write=False)
    return bands


@lru_cache(maxsize=8)
def _colour_table(colormap: str) -> np.ndarray:
    import matplotlib

    try:
        cmap = matplotlib.colormaps[colormap]
    except KeyError:
        raise ValueError(f"unknown matplotlib colour map {colormap!r}") from None
    rgba = cmap(np.arange(cmap.N))                    # the map's own lookup table, [N, 4] floats
    table = np.round(rgba[:, :3] * 255.0).astype(np.uint8)
    table.setflags(write=False)
    return table


def spectrogram_image(audio: np.ndarray, sample_rate: int = 16000, *, size: int = 227, n_mels: int = 128,
                      window_ms: float | None = None, hop_ms: float | None = None,
                      colormap: str = "viridis", fmax: float | None = 8000.0,
                      top_db: float | None = None) -> np.ndarray:
    """The DeepSpectrum mel-spectrogram picture of a clip: uint8 RGB ``[size, size, 3]``.

    Parameters
    ----------
    audio:
        Mono waveform ``[samples]`` (float in [-1, 1], or integer PCM, scaled to it).
    sample_rate:
        Its sample rate; the paper resamples to 16 kHz first.
    size:
        Side of the square picture (DeepSpectrum's ``size = 227`` for AlexNet).
    n_mels:
        Mel bands (DeepSpectrum: 128).
    window_ms, hop_ms:
        STFT window and hop; ``None`` is DeepSpectrum's rule: the next power of two of 25 ms
        (512 samples = 32 ms at 16 kHz) and half of it as hop (256 samples = 16 ms).
    colormap:
        A matplotlib colour map name (DeepSpectrum: ``viridis``).
    fmax:
        Top of the filterbank and of the picture; ``None`` or anything above the Nyquist
        frequency means the Nyquist frequency (DeepSpectrum's default; 8 kHz at 16 kHz).
    top_db:
        Optional dynamic-range floor below the maximum; DeepSpectrum uses none.

    The colours span the clip's own dB range (minimum = the colour map's first colour,
    maximum = its last); low frequencies are at the bottom, time runs left to right.
    A silent clip gives a picture in the colour map's first colour; a clip shorter than one
    window is zero-padded. See the module docstring for the geometry and the deviations
    from DeepSpectrum.
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    db = log_mel_spectrogram(audio, sample_rate, n_mels=n_mels, window_ms=window_ms, hop_ms=hop_ms,
                             fmax=fmax, top_db=top_db)
    table = _colour_table(colormap)
    lo, hi = float(db.min()), float(db.max())
    scaled = (db - lo) / (hi - lo) if hi > lo else np.zeros_like(db)
    levels = np.minimum((scaled * len(table)).astype(np.intp), len(table) - 1)   # as matplotlib's Colormap
    nyquist = sample_rate / 2.0
    top = nyquist if fmax is None else min(float(fmax), nyquist)
    rows = _row_bands(n_mels, top, size)
    n_frames = db.shape[1]
    cols = np.minimum(((np.arange(size) + 0.5) * n_frames / size).astype(np.intp), n_frames - 1)
    return table[levels[rows[:, None], cols[None, :]]]


# --------------------------------------------------------------------------------------
# AlexNet
# --------------------------------------------------------------------------------------

_PREPROCESSING = ("imagenet", "deepspectrum")


def normalise_images(images: torch.Tensor, preprocessing: str = "imagenet") -> torch.Tensor:
    """AlexNet input from images ``[B, 3, H, W]`` in RGB order.

    ``uint8`` images are divided by 255; floating-point images must already be in [0, 1].
    ``"imagenet"`` then applies torchvision's ImageNet mean/std (what its AlexNet weights were
    trained with); ``"deepspectrum"`` reverses the channels to BGR without mean/std, as
    DeepSpectrum's PyTorch extractor does. The memory format (e.g. channels-last) is kept.
    """
    if preprocessing not in _PREPROCESSING:
        raise ValueError(f"preprocessing must be one of {_PREPROCESSING}, got {preprocessing!r}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape [batch, 3, height, width], got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        x = images.float() / 255.0
    elif images.is_floating_point():
        x = images
    else:
        raise TypeError(f"expected uint8 or floating-point images, got {images.dtype}")
    if preprocessing == "deepspectrum":
        return x.flip(1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


class AlexNetFeatures(nn.Module):
    """torchvision's AlexNet as an fc7 feature extractor.

    The submodules are torchvision's own (``features``, ``avgpool``, ``classifier`` including
    the unused 1000-way ``classifier.6``), so ``state_dict()`` has exactly the keys and shapes of
    ``torchvision.models.alexnet()`` and the ImageNet file loads unchanged
    (:func:`load_alexnet_weights`, or ``weights=`` here).

    ``forward(images)`` takes ``[B, 3, H, W]`` RGB images, ``uint8`` (0-255) or floating point
    in [0, 1] (227x227 as DeepSpectrum; any size >= 63 px works through the adaptive pooling),
    normalises them inside (:func:`normalise_images`) and returns ``[B, 4096]``: the output of
    ``classifier[5]``, i.e. fc7 after its ReLU (``relu=False``: ``classifier[4]``, fc7 before it,
    as DeepSpectrum's PyTorch extractor). The module is created in eval mode (dropout off);
    in train mode ``classifier[0]`` and ``classifier[3]`` drop out as in torchvision.
    """

    def __init__(self, weights: str | Path | Mapping | None = None, *, relu: bool = True,
                 preprocessing: str = "imagenet"):
        super().__init__()
        from torchvision.models import alexnet

        if preprocessing not in _PREPROCESSING:
            raise ValueError(f"preprocessing must be one of {_PREPROCESSING}, got {preprocessing!r}")
        net = alexnet(weights=None)
        self.features = net.features
        self.avgpool = net.avgpool
        self.classifier = net.classifier
        self.relu = bool(relu)
        self.preprocessing = preprocessing
        self.eval()
        if weights is not None:
            load_alexnet_weights(self, weights)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = normalise_images(images, self.preprocessing)
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        last = 5 if self.relu else 4   # classifier: 0 dropout, 1 fc6, 2 relu, 3 dropout, 4 fc7, 5 relu, 6 fc8
        for index in range(last + 1):
            x = self.classifier[index](x)
        return x

    def extra_repr(self) -> str:
        return f"output=fc7{'+relu' if self.relu else ''}, preprocessing={self.preprocessing!r}"


def _check_fit(model: nn.Module, state: Mapping, source: str, ignore: frozenset[str] = frozenset()) -> None:
    expected = {k: v for k, v in model.state_dict().items() if k not in ignore}
    given = {k: v for k, v in state.items() if k not in ignore}
    parts = key_differences(expected, given)
    if not parts:
        return
    mismatched = [k for k, v in expected.items() if k in given and tuple(given[k].shape) != tuple(v.shape)]
    only_head = (len(parts) == 1 and mismatched and all(k.startswith("classifier.6.") for k in mismatched))
    hint = _WEIGHTS_HINT
    if only_head:
        hint += "; to start from ImageNet weights with another number of classes use alexnet_classifier(n, state)"
    raise WeightsError(f"{source} does not fit {type(model).__name__} (torchvision's AlexNet layout): "
                       + "; ".join(parts), hint=hint)


def load_alexnet_weights(model: nn.Module, path_or_state: str | Path | Mapping) -> nn.Module:
    """Load a torchvision-layout AlexNet state dict into ``model``, strictly; returns ``model``.

    ``path_or_state`` is a file written by ``torch.save(state_dict)`` (read with
    ``torch.load(weights_only=True, map_location="cpu")``) or the mapping itself. ``model`` is an
    :class:`AlexNetFeatures` or any torchvision AlexNet (e.g. from :func:`alexnet_classifier`).
    A file that cannot be read, or keys / shapes that do not fit, raise :class:`WeightsError`
    naming the file and the first few missing, unexpected and shape-mismatched keys with
    their counts; nothing is loaded then.
    """
    state, _, source, _ = load_state(path_or_state, _WEIGHTS_HINT, wrappers=())
    _check_fit(model, state, source)
    model.load_state_dict(state, strict=True)
    return model


_HEAD = frozenset({"classifier.6.weight", "classifier.6.bias"})


def alexnet_classifier(n_classes: int, state: str | Path | Mapping | None = None) -> nn.Module:
    """torchvision's AlexNet with its last layer (``classifier.6``) an ``n_classes``-way Linear.

    For fine-tuning (``speech.alexnet_ft``). With ``state`` (a file or a state dict in
    torchvision's layout, normally the ImageNet weights), every other layer is loaded from it,
    strictly (:class:`WeightsError` on a mismatch); ``classifier.6`` in ``state`` is ignored and
    the new head keeps PyTorch's default initialisation (seed torch beforehand for a
    reproducible head). To restore a fine-tuned model, load its own state dict into the
    returned model with :func:`load_alexnet_weights`. Inputs are normalised RGB images
    (:func:`normalise_images`); the output is the logits ``[B, n_classes]``.
    """
    from torchvision.models import alexnet

    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    model = alexnet(weights=None)
    if state is not None:
        loaded, _, source, _ = load_state(state, _WEIGHTS_HINT, wrappers=())
        _check_fit(model, loaded, source, ignore=_HEAD)
        body = {k: v for k, v in loaded.items() if k not in _HEAD}
        result = model.load_state_dict(body, strict=False)
        assert not result.unexpected_keys and set(result.missing_keys) <= _HEAD, result
    head = model.classifier[6]
    model.classifier[6] = nn.Linear(head.in_features, int(n_classes))
    return model


def fc7_features(images: np.ndarray, model: nn.Module, batch_size: int = 64,
                 device: str | torch.device = "cpu") -> np.ndarray:
    """fc7 features ``[N, 4096]`` float32 of uint8 RGB images ``[N, H, W, 3]`` (227x227 by default).

    Runs ``model`` (an :class:`AlexNetFeatures`, which normalises internally) in batches under
    ``torch.inference_mode()`` with channels-last tensors, and under bf16 autocast when
    ``device`` is CUDA. The model is moved to ``device``, converted to channels-last and set
    to eval mode (in place).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected images of shape [N, height, width, 3], got {images.shape}")
    if images.dtype != np.uint8:
        raise TypeError(f"expected uint8 images, got {images.dtype}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    dev = torch.device(device)
    model = model.to(dev).to(memory_format=torch.channels_last).eval()
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda"
                else contextlib.nullcontext())
    chunks = []
    with torch.inference_mode(), autocast:
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size]))
            batch = batch.to(dev, non_blocking=True).permute(0, 3, 1, 2)   # NHWC storage = channels-last
            chunks.append(model(batch).float().cpu().numpy())
    if not chunks:
        return np.zeros((0, FC7_DIM), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(chunks).astype(np.float32, copy=False))
