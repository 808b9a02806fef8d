"""Seeded batch augmentations for networks trained from random initialisation (docs/augmentation.md).

Each augmentation is a torch module that transforms a whole training batch on the batch's
own device (the GPU where training runs on one) in train mode, and is the identity in eval
mode, so validation and held-out clips are never touched.  The random parameters of a batch
(shifts, gains, stripe positions, mixing weights, angles) are drawn on the CPU from the
module's own seeded numpy generator and only the resulting small tensors go to the device:
the same seed gives the same augmentation on any device.  Shapes and dtypes are kept.

* waveforms ``[batch, samples]``: :class:`RandomShift`, :class:`RandomGain`;
* spectrograms (log-mel ``[batch, 1, frames, bins]``, or images): :class:`SpecAugment`;
* frames ``[batch, channels, height, width]``: :class:`RandomAffine`, :class:`RandomBrightness`;
* any batch with its targets: :class:`Mixup`.

This module imports torch at import time: import it only where a network trains.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BatchAugmentation", "RandomShift", "RandomGain", "SpecAugment", "RandomAffine", "RandomBrightness",
           "Mixup", "child_seed"]


def child_seed(seed: int, index: int) -> int:
    """The ``index``-th seed derived from a model's seed, one per augmentation of that model
    (the training loop's mixup takes index 0)."""
    return int(np.random.SeedSequence(seed, spawn_key=(index,)).generate_state(1)[0])


class BatchAugmentation(nn.Module):
    """Base: :meth:`transform` in train mode, the identity in eval mode; ``self.rng`` is the
    module's numpy generator (seeded with ``seed``), used for every random draw."""

    def __init__(self, seed: int = 0):
        super().__init__()
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transform(x) if self.training else x

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                         if not k.startswith("_") and k not in ("training", "rng"))


class RandomShift(BatchAugmentation):
    """Each example moved along its last axis by a whole number of steps drawn uniformly in
    ``[-max_shift, max_shift]``; what moves out is lost, what comes in is zeros (silence for
    a waveform), so the length is kept."""

    def __init__(self, max_shift: int, seed: int = 0):
        super().__init__(seed)
        if max_shift < 0:
            raise ValueError(f"max_shift must be at least 0, got {max_shift}")
        self.max_shift = int(max_shift)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        shifts = self.rng.integers(-self.max_shift, self.max_shift + 1, size=x.shape[0])
        return shift_last_axis(x, torch.as_tensor(shifts, device=x.device))


def shift_last_axis(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """``out[b, ..., t] = x[b, ..., t - shifts[b]]``, zero where ``t - shifts[b]`` falls outside."""
    length = x.shape[-1]
    source = torch.arange(length, device=x.device)[None, :] - shifts[:, None]      # [batch, length]
    inside = ((source >= 0) & (source < length)).to(x.dtype)
    flat = x.reshape(x.shape[0], -1, length)
    index = source.clamp(0, length - 1)[:, None, :].expand_as(flat)
    return (flat.gather(-1, index) * inside[:, None, :]).reshape(x.shape)


class RandomGain(BatchAugmentation):
    """Each example scaled by a gain drawn uniformly in ``[-max_db, max_db]`` decibels."""

    def __init__(self, max_db: float, seed: int = 0):
        super().__init__(seed)
        if max_db < 0:
            raise ValueError(f"max_db must be at least 0, got {max_db}")
        self.max_db = float(max_db)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        db = self.rng.uniform(-self.max_db, self.max_db, size=x.shape[0])
        factors = torch.as_tensor(10.0 ** (db / 20.0), dtype=x.dtype, device=x.device)
        return x * factors.reshape((-1,) + (1,) * (x.dim() - 1))


class SpecAugment(BatchAugmentation):
    """SpecAugment's masking (Park et al., 2019) as PANNs trains with it: per example,
    ``time_stripes`` stripes of a width drawn in ``[0, time_width]`` steps along ``time_axis``
    and ``freq_stripes`` stripes of width in ``[0, freq_width]`` bins along ``freq_axis``,
    each at a uniform position that keeps it inside, are set to zero.  Stripes may overlap.
    The default axes fit CNN14's log-mel ``[batch, 1, frames, mel_bins]``; for images
    ``[batch, 3, freq, time]`` pass ``time_axis=-1, freq_axis=-2``."""

    def __init__(self, time_stripes: int = 2, time_width: int = 40, freq_stripes: int = 2, freq_width: int = 8,
                 time_axis: int = -2, freq_axis: int = -1, seed: int = 0):
        super().__init__(seed)
        for name, value in (("time_stripes", time_stripes), ("time_width", time_width),
                            ("freq_stripes", freq_stripes), ("freq_width", freq_width)):
            if value < 0:
                raise ValueError(f"{name} must be at least 0, got {value}")
        if time_axis == freq_axis:
            raise ValueError("time_axis and freq_axis must differ")
        self.time_stripes, self.time_width = int(time_stripes), int(time_width)
        self.freq_stripes, self.freq_width = int(freq_stripes), int(freq_width)
        self.time_axis, self.freq_axis = time_axis, freq_axis

    def stripes(self, batch: int, length: int, n: int, width: int) -> np.ndarray:
        """Boolean ``[batch, length]``: True where one of ``n`` stripes of width <= ``width`` lies."""
        width = min(width, length)
        widths = self.rng.integers(0, width + 1, size=(batch, n))
        starts = np.floor(self.rng.random((batch, n)) * (length - widths + 1)).astype(int)
        position = np.arange(length)[None, None, :]
        return ((position >= starts[..., None]) & (position < (starts + widths)[..., None])).any(axis=1)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        masked = None
        for axis, n, width in ((self.time_axis, self.time_stripes, self.time_width),
                               (self.freq_axis, self.freq_stripes, self.freq_width)):
            if not n or not width:
                continue
            axis = axis % x.dim()
            stripes = torch.as_tensor(self.stripes(x.shape[0], x.shape[axis], n, width), device=x.device)
            shape = [1] * x.dim()
            shape[0], shape[axis] = x.shape[0], x.shape[axis]
            stripes = stripes.reshape(shape)
            masked = stripes if masked is None else masked | stripes
        return x if masked is None else x.masked_fill(masked, 0)


class RandomAffine(BatchAugmentation):
    """Frames ``[batch, channels, height, width]`` rotated by an angle drawn in
    ``[-max_rotation, max_rotation]`` degrees about their centre and moved by up to
    ``max_shift`` pixels along each axis (a random crop of the frame padded by ``max_shift``),
    one transform per example shared by all its channels (a face and its saliency map stay
    aligned); pixels brought in from outside repeat the border."""

    def __init__(self, max_rotation: float = 10.0, max_shift: float = 4.0, seed: int = 0):
        super().__init__(seed)
        if max_rotation < 0 or max_shift < 0:
            raise ValueError(f"max_rotation and max_shift must be at least 0, got {max_rotation}, {max_shift}")
        self.max_rotation = float(max_rotation)
        self.max_shift = float(max_shift)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        angles = np.deg2rad(self.rng.uniform(-self.max_rotation, self.max_rotation, size=batch))
        shifts = self.rng.uniform(-self.max_shift, self.max_shift, size=(batch, 2))
        cos, sin = np.cos(angles), np.sin(angles)
        # affine_grid maps output to input in [-1, 1] coordinates: a pixel is 2 / size of them.
        theta = np.stack([np.stack([cos, -sin * height / width, -2.0 * shifts[:, 0] / width], axis=1),
                          np.stack([sin * width / height, cos, -2.0 * shifts[:, 1] / height], axis=1)], axis=1)
        work = x if x.dtype in (torch.float32, torch.float64) else x.float()
        grid = F.affine_grid(torch.as_tensor(theta, dtype=work.dtype, device=x.device), list(x.shape),
                             align_corners=False)
        return F.grid_sample(work, grid, mode="bilinear", padding_mode="border", align_corners=False).to(x.dtype)


class RandomBrightness(BatchAugmentation):
    """Each example's ``channels`` (default the first: the face, not its saliency map) raised
    or lowered by a level drawn in ``[-max_delta, max_delta]``, on pixels in ``[0, 1]``,
    clipped back to that range."""

    def __init__(self, max_delta: float = 0.1, channels: Sequence[int] = (0,), seed: int = 0):
        super().__init__(seed)
        if max_delta < 0:
            raise ValueError(f"max_delta must be at least 0, got {max_delta}")
        self.max_delta = float(max_delta)
        self.channels = tuple(channels)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        deltas = self.rng.uniform(-self.max_delta, self.max_delta, size=x.shape[0])
        offset = torch.zeros((x.shape[0], x.shape[1]) + (1,) * (x.dim() - 2), dtype=x.dtype, device=x.device)
        offset[:, list(self.channels)] = torch.as_tensor(deltas, dtype=x.dtype, device=x.device).reshape(
            (-1, 1) + (1,) * (x.dim() - 2))
        return (x + offset).clamp_(0.0, 1.0)


class Mixup(BatchAugmentation):
    """Mixup (Zhang et al., 2018), as PANNs trains with it: each example ``i`` becomes
    ``lam_i * x_i + (1 - lam_i) * x_j`` with a random partner ``j`` of the same batch and
    ``lam_i ~ Beta(alpha, alpha)``, and its target distribution is mixed alike.  Called as
    ``mixup(x, targets)`` with targets ``[batch, classes]``; returns both, unchanged in eval
    mode.  Unlike PANNs, which mixes CNN14's log-mel, this mixes what the network reads
    (waveforms, frames), so it works for any network."""

    def __init__(self, alpha: float = 1.0, seed: int = 0):
        super().__init__(seed)
        if alpha <= 0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        self.alpha = float(alpha)

    def forward(self, x: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.training:
            return x, targets
        batch = x.shape[0]
        partners = torch.as_tensor(self.rng.permutation(batch), device=x.device)
        lam = self.rng.beta(self.alpha, self.alpha, size=batch)
        lam_x = torch.as_tensor(lam, dtype=x.dtype, device=x.device).reshape((-1,) + (1,) * (x.dim() - 1))
        lam_t = torch.as_tensor(lam, dtype=targets.dtype, device=targets.device)[:, None]
        return lam_x * x + (1 - lam_x) * x[partners], lam_t * targets + (1 - lam_t) * targets[partners]
