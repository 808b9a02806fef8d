"""PANNs CNN14 (Kong et al., 2020), written so that the official AudioSet checkpoints load.

The module reproduces the *inference* path of ``Cnn14`` from the PANNs code
(``audioset_tagging_cnn/pytorch/models.py``) with the same parameter and buffer names and
shapes, so ``Cnn14_16k_mAP=0.438.pth`` (a dict whose ``"model"`` entry is the state dict)
loads with ``strict=True``:

* ``spectrogram_extractor.stft.conv_real.weight`` / ``conv_imag.weight`` — the STFT as a
  ``Conv1d`` whose kernels are the DFT basis times a periodic Hann window
  (``[n_fft // 2 + 1, 1, n_fft]``), applied after centre padding in ``reflect`` mode;
  its output is the power spectrogram ``real² + imag²``;
* ``logmel_extractor.melW`` — a Slaney-style mel filterbank (``[n_fft // 2 + 1, mel_bins]``,
  the transpose of ``librosa.filters.mel(..., htk=False, norm="slaney")``), followed by
  ``10·log10(max(x, 1e-10))`` (``ref=1``, no ``top_db`` clipping);
* ``bn0`` over the mel bins, six ``conv_block``s of two 3x3 conv + BN + ReLU with 2x2
  average pooling (1x1 after the last), ``fc1`` and ``fc_audioset``.

Augmentation for training is a hook: ``spec_augment`` (``None`` by default) is applied to
the normalised log-mel between ``bn0`` and the conv blocks in train mode only, where
upstream's training code applies its SpecAugment (e.g. :class:`emokit_core.augment.SpecAugment`);
it has no parameters, so checkpoints are unaffected.
The forward pass returns ``{"clipwise_output", "embedding"}`` as upstream does; the
embedding (``relu(fc1)``, 2048-d at ``width=1``) is the paper's feature vector.

Short inputs: five 2x2 poolings need at least 32 spectrogram frames, i.e.
``hop_size * 31`` samples (4960 samples = 0.31 s at 16 kHz with the defaults), and reflect
padding needs more than ``window_size // 2`` samples. Shorter clips are padded up to
:attr:`Cnn14.min_samples` by repeating the signal (``pad_mode="repeat"``, the default) or
with zeros (``pad_mode="zeros"``); an empty clip becomes silence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emokit_core.checkpoints import key_differences, load_state
from emokit_core.melscale import mel_filterbank
from emokit_core.errors import WeightsError

__all__ = [
    "Cnn14",
    "WeightsError",
    "load_panns_checkpoint",
    "save_panns_checkpoint",
    "replace_head",
    "freeze_lower_blocks",
    "stft_kernels",
    "BASE_CHANNELS",
    "PANNS_16K",
]

#: Output channels of conv_block1..6 at ``width=1`` (the upstream CNN14).
BASE_CHANNELS = (64, 128, 256, 512, 1024, 2048)

#: Constructor arguments of the 16 kHz PANNs checkpoint ``Cnn14_16k_mAP=0.438.pth``.
PANNS_16K = dict(sample_rate=16000, window_size=512, hop_size=160, mel_bins=64, fmin=50, fmax=8000,
                 classes_num=527)

_CHECKPOINT_HINT = ("expected a PANNs Cnn14 checkpoint for 16 kHz audio (window 512, hop 160, 64 mel bins, "
                    "50-8000 Hz, 527 AudioSet classes), e.g. Cnn14_16k_mAP=0.438.pth from "
                    "https://zenodo.org/record/3987831")


# --------------------------------------------------------------------------------------
# Front-end: STFT kernels (the mel filterbank is emokit_core.melscale's)
# --------------------------------------------------------------------------------------

def stft_kernels(n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary DFT kernels times a periodic Hann window, ``[n_fft // 2 + 1, 1, n_fft]``.

    Convolving a signal with them (stride = hop) gives ``Re`` and ``Im`` of
    ``sum_n x[n] w[n] exp(-2πi k n / n_fft)`` for ``k = 0 .. n_fft // 2``.
    """
    n = np.arange(n_fft)
    k = np.arange(n_fft // 2 + 1)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft)        # periodic ("fftbins") Hann
    phase = 2.0 * np.pi * np.mod(np.outer(k, n), n_fft) / n_fft  # reduced mod n_fft for accuracy
    real = (np.cos(phase) * window)[:, None, :]
    imag = (-np.sin(phase) * window)[:, None, :]
    return real.astype(np.float32), imag.astype(np.float32)


class _STFT(nn.Module):
    """STFT as two strided ``Conv1d`` (names as torchlibrosa's ``STFT``: ``conv_real``, ``conv_imag``).

    While the kernels are the windowed DFT basis (as built here, and in every PANNs checkpoint)
    the forward pass computes the same numbers with an FFT (``torch.stft``), several times faster
    than the convolution; kernels that differ from it (a checkpoint that trained them) are
    convolved as they are.
    """

    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        n_bins = n_fft // 2 + 1
        self.conv_real = nn.Conv1d(1, n_bins, kernel_size=n_fft, stride=hop_length, bias=False)
        self.conv_imag = nn.Conv1d(1, n_bins, kernel_size=n_fft, stride=hop_length, bias=False)
        real, imag = stft_kernels(n_fft)
        with torch.no_grad():
            self.conv_real.weight.copy_(torch.from_numpy(real))
            self.conv_imag.weight.copy_(torch.from_numpy(imag))
        for p in self.parameters():
            p.requires_grad_(False)
        # not in the state dict: checkpoints keep upstream's keys
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)
        self._dft_checked: tuple[Any, bool] | None = None  # (kernels' identity and version, verdict)

    def holds_dft_kernels(self) -> bool:
        """Whether the kernels are (within 1e-6) the windowed DFT basis; checked again only after
        they change (a checkpoint load, a move to another device)."""
        real, imag = self.conv_real.weight, self.conv_imag.weight
        identity = (real.data_ptr(), real._version, imag.data_ptr(), imag._version)
        if self._dft_checked is None or self._dft_checked[0] != identity:
            ref_real, ref_imag = (torch.from_numpy(k).to(real.device, real.dtype) for k in stft_kernels(self.n_fft))
            same = bool(torch.allclose(real, ref_real, rtol=0, atol=1e-6)
                        and torch.allclose(imag, ref_imag, rtol=0, atol=1e-6))
            self._dft_checked = (identity, same)
        return self._dft_checked[1]

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[batch, samples]`` → ``(real, imag)``, each ``[batch, 1, frames, n_fft // 2 + 1]``."""
        x = waveform[:, None, :]
        x = F.pad(x, (self.n_fft // 2, self.n_fft // 2), mode="reflect")
        if self.holds_dft_kernels():
            spectrum = torch.stft(x[:, 0].float(), self.n_fft, self.hop_length, window=self.window.float(),
                                  center=False, return_complex=True)  # [batch, bins, frames]
            dtype = self.conv_real.weight.dtype
            return (spectrum.real.transpose(1, 2)[:, None].to(dtype),
                    spectrum.imag.transpose(1, 2)[:, None].to(dtype))
        real = self.conv_real(x).transpose(1, 2)[:, None]
        imag = self.conv_imag(x).transpose(1, 2)[:, None]
        return real, imag


class _Spectrogram(nn.Module):
    """Power spectrogram; holds the STFT as ``stft`` so the key is ``spectrogram_extractor.stft.*``."""

    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        self.stft = _STFT(n_fft, hop_length)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        real, imag = self.stft(waveform)
        return real * real + imag * imag


class _LogmelFilterBank(nn.Module):
    """Power spectrogram → mel (``@ melW``) → dB with ``ref=1``, ``amin=1e-10``, no ``top_db``."""

    amin = 1e-10

    def __init__(self, sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None):
        super().__init__()
        mel = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, scale="slaney", norm="slaney").astype(np.float32)
        self.melW = nn.Parameter(torch.from_numpy(np.ascontiguousarray(mel.T)), requires_grad=False)

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        mel = torch.matmul(power, self.melW)
        return 10.0 * torch.log10(torch.clamp(mel, min=self.amin))  # - 10 log10(max(amin, ref=1)) = 0


# --------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------

def _init_conv_or_linear(layer: nn.Module) -> None:
    nn.init.xavier_uniform_(layer.weight)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)


def _init_bn(bn: nn.BatchNorm2d) -> None:
    nn.init.ones_(bn.weight)
    nn.init.zeros_(bn.bias)


class _ConvBlock(nn.Module):
    """Two 3x3 convolutions (no bias) with batch norm and ReLU, then average pooling."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        for conv in (self.conv1, self.conv2):
            _init_conv_or_linear(conv)
        for bn in (self.bn1, self.bn2):
            _init_bn(bn)

    def forward(self, x: torch.Tensor, pool: int) -> torch.Tensor:
        x = F.relu_(self.bn1(self.conv1(x)))
        x = F.relu_(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, kernel_size=pool) if pool > 1 else x


class Cnn14(nn.Module):
    """PANNs CNN14 (inference path), state-dict compatible with the official checkpoints.

    ``width`` scales the channel counts of the six conv blocks (64 … 2048 at ``width=1``,
    which is exactly the upstream network); the embedding has ``channels[-1]`` dimensions.
    ``conv_dropout`` (after each conv block) and ``fc_dropout`` (on the pooled features and on
    the embedding) are upstream's 0.2 and 0.5 by default; they act in training only, so they
    never change a checkpoint or an embedding.
    Input ``[batch, samples]`` (or ``[samples]``) of float audio at ``sample_rate``.
    """

    n_pools = 5  # 2x2 average poolings after conv_block1..5

    def __init__(self, sample_rate: int = 16000, window_size: int = 512, hop_size: int = 160,
                 mel_bins: int = 64, fmin: float = 50, fmax: float | None = 8000, classes_num: int = 527,
                 width: float = 1.0, pad_mode: str = "repeat", conv_dropout: float = 0.2, fc_dropout: float = 0.5):
        super().__init__()
        if mel_bins < 2 ** self.n_pools:
            raise ValueError(f"mel_bins must be at least {2 ** self.n_pools} for five 2x2 poolings, got {mel_bins}")
        if pad_mode not in ("repeat", "zeros"):
            raise ValueError(f"pad_mode must be 'repeat' or 'zeros', got {pad_mode!r}")
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        for name, rate in (("conv_dropout", conv_dropout), ("fc_dropout", fc_dropout)):
            if not 0 <= rate < 1:
                raise ValueError(f"{name} must be in [0, 1), got {rate}")
        self.config = dict(sample_rate=sample_rate, window_size=window_size, hop_size=hop_size,
                           mel_bins=mel_bins, fmin=fmin, fmax=fmax, classes_num=classes_num, width=width)
        self.pad_mode = pad_mode
        self.conv_dropout = conv_dropout
        self.fc_dropout = fc_dropout
        self.channels = tuple(max(1, int(round(c * width))) for c in BASE_CHANNELS)
        #: Shortest input (samples) that survives the STFT reflect padding and five 2x2 poolings;
        #: shorter inputs are padded up to it.
        self.min_samples = max(hop_size * (2 ** self.n_pools - 1), window_size // 2 + 1)

        # Registration order follows upstream, so state_dict() lists keys in the same order.
        self.spectrogram_extractor = _Spectrogram(window_size, hop_size)
        self.logmel_extractor = _LogmelFilterBank(sample_rate, window_size, mel_bins, fmin, fmax)
        self.bn0 = nn.BatchNorm2d(mel_bins)
        in_channels = 1
        for i, out_channels in enumerate(self.channels, start=1):
            setattr(self, f"conv_block{i}", _ConvBlock(in_channels, out_channels))
            in_channels = out_channels
        self.fc1 = nn.Linear(in_channels, in_channels, bias=True)
        self.fc_audioset: nn.Linear | None = nn.Linear(in_channels, classes_num, bias=True)
        self.fc_transfer: nn.Linear | None = None  # set by replace_head()
        self.spec_augment: nn.Module | None = None  # training-time augmentation of the log-mel
        _init_bn(self.bn0)
        _init_conv_or_linear(self.fc1)
        _init_conv_or_linear(self.fc_audioset)

    @property
    def embedding_dim(self) -> int:
        return self.channels[-1]

    def _pad_short(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        if n >= self.min_samples:
            return x
        if n == 0 or self.pad_mode == "zeros":
            return F.pad(x, (0, self.min_samples - n))
        return x.repeat(1, math.ceil(self.min_samples / n))[:, : self.min_samples]

    def logmel(self, waveform: torch.Tensor) -> torch.Tensor:
        """``[batch, samples]`` → log-mel ``[batch, 1, frames, mel_bins]`` (after short-input padding)."""
        if waveform.dim() == 1:
            waveform = waveform[None]
        x = self._pad_short(waveform)
        return self.logmel_extractor(self.spectrogram_extractor(x))

    def forward(self, waveform: torch.Tensor) -> dict[str, torch.Tensor]:
        """``[batch, samples]`` → ``{"clipwise_output": [batch, classes], "embedding": [batch, dim]}``.

        With the AudioSet head ``clipwise_output`` is the sigmoid of ``fc_audioset``; after
        :func:`replace_head` it is the log-softmax of ``fc_transfer`` (as upstream's fine-tuning
        template), also given as ``"log_probs"``.
        """
        x = self.logmel(waveform)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        if self.training and self.spec_augment is not None:
            x = self.spec_augment(x)
        if self.conv_block2.conv1.weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        for i in range(1, 7):
            x = getattr(self, f"conv_block{i}")(x, pool=2 if i < 6 else 1)
            x = F.dropout(x, p=self.conv_dropout, training=self.training)
        x = torch.mean(x, dim=3)                      # over frequency
        x = torch.amax(x, dim=2) + torch.mean(x, dim=2)  # over time: max + mean
        x = F.dropout(x, p=self.fc_dropout, training=self.training)
        x = F.relu_(self.fc1(x))
        embedding = F.dropout(x, p=self.fc_dropout, training=self.training)
        if self.fc_transfer is not None:
            # Upstream Transfer_Cnn14: the new head sees the (dropped-out) embedding.
            log_probs = torch.log_softmax(self.fc_transfer(embedding), dim=-1)
            return {"clipwise_output": log_probs, "log_probs": log_probs, "embedding": embedding}
        # Upstream feeds fc_audioset the embedding *before* its dropout (same thing in eval mode).
        return {"clipwise_output": torch.sigmoid(self.fc_audioset(x)), "embedding": embedding}

    @torch.no_grad()
    def embed(self, waveform: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Embedding(s) of a clip ``[samples]`` → ``[dim]`` or a batch ``[batch, samples]`` → ``[batch, dim]``.

        Runs in eval mode (restoring the previous mode) without gradients, on the model's device.
        """
        param = self.fc1.weight
        x = torch.as_tensor(waveform, dtype=param.dtype, device=param.device)
        single = x.dim() == 1
        was_training = self.training
        self.eval()
        try:
            out = self(x[None] if single else x)["embedding"]
        finally:
            self.train(was_training)
        return out[0] if single else out


# --------------------------------------------------------------------------------------
# Fine-tuning head
# --------------------------------------------------------------------------------------

def replace_head(model: Cnn14, n_classes: int, keep_audioset_head: bool = False) -> Cnn14:
    """Put a new ``n_classes`` linear layer ``fc_transfer`` on the embedding, for fine-tuning.

    Afterwards ``model(x)["log_probs"]`` (also ``"clipwise_output"``) is the log-softmax of
    ``fc_transfer(embedding)``, to be trained with ``F.nll_loss`` (the paper's recipe). The
    AudioSet head ``fc_audioset`` is dropped unless ``keep_audioset_head``; all other names stay
    as upstream. Returns the same model, modified in place.
    """
    if n_classes < 1:
        raise ValueError(f"n_classes must be at least 1, got {n_classes}")
    ref = model.fc1.weight
    head = nn.Linear(model.embedding_dim, n_classes, bias=True).to(device=ref.device, dtype=ref.dtype)
    _init_conv_or_linear(head)
    model.fc_transfer = head
    if not keep_audioset_head:
        model.fc_audioset = None
    return model


def freeze_lower_blocks(model: Cnn14, n_blocks: int) -> Cnn14:
    """Freeze ``bn0`` and ``conv_block1..n_blocks`` (``requires_grad=False``); the rest stays trainable.

    The STFT and mel parameters are always frozen. Frozen blocks' batch-norm statistics still
    update in train mode unless the trainer keeps those modules in eval mode.
    """
    if not 0 <= n_blocks <= 6:
        raise ValueError(f"n_blocks must be in 0..6, got {n_blocks}")
    modules = ([model.bn0] + [getattr(model, f"conv_block{i}") for i in range(1, n_blocks + 1)]) if n_blocks else []
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(False)
    return model


# --------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------

def save_panns_checkpoint(model: nn.Module, path: str | Path) -> Path:
    """Write ``{"model": state_dict}``, the layout of the official PANNs checkpoints."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save({"model": state}, path)
    return path


def load_panns_checkpoint(model: nn.Module, path_or_state: str | Path | Mapping) -> dict[str, Any]:
    """Load PANNs weights into ``model`` strictly and return a summary.

    ``path_or_state``: a checkpoint file (read with ``torch.load(weights_only=True)`` on CPU), a
    dict with a ``"model"`` entry, or a bare state dict. Keys and shapes must match the model
    exactly (``num_batches_tracked`` buffers may be absent, as in files from old torch);
    otherwise :class:`WeightsError` lists the missing and unexpected keys and the shape
    mismatches. Load the AudioSet weights *before* :func:`replace_head` (the official files have
    no ``fc_transfer``); a fine-tuned model's own checkpoint loads into a model with the same head. Returns ``{"source", "sha256" (files only), "n_tensors", "n_parameters",
    "extra_keys"}``.
    """
    state, extra, source, sha256 = load_state(path_or_state, _CHECKPOINT_HINT, wrappers=("model",))
    expected = model.state_dict()
    parts = key_differences(expected, state)
    if parts:
        config = getattr(model, "config", None)
        arch = f"{type(model).__name__}({', '.join(f'{k}={v}' for k, v in config.items())})" if config \
            else type(model).__name__
        hint = _CHECKPOINT_HINT
        conv = state.get("spectrogram_extractor.stft.conv_real.weight")
        if conv is not None and conv.dim() == 3 and conv.shape[-1] == 1024:
            hint = ("this looks like the 32 kHz PANNs model (window 1024): build Cnn14(sample_rate=32000, "
                    "window_size=1024, hop_size=320, mel_bins=64, fmin=50, fmax=14000) and resample to 32 kHz, "
                    "or use " + _CHECKPOINT_HINT.split("e.g. ", 1)[1])
        raise WeightsError(f"{source} does not fit {arch}: " + "; ".join(parts), hint=hint)

    state = dict(state)
    for k, v in expected.items():  # tolerate checkpoints written before num_batches_tracked existed
        if k.endswith(".num_batches_tracked") and k not in state:
            state[k] = torch.zeros_like(v)
    model.load_state_dict(state, strict=True)
    return {"source": source, "sha256": sha256, "n_tensors": len(state),
            "n_parameters": int(sum(v.numel() for k, v in state.items() if not k.endswith("num_batches_tracked"))),
            "extra_keys": extra}
