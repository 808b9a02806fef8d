"""Saliency-guided Spatial Transformer Network for 48x48 grayscale faces.

The frame-level facial emotion recognizer of Luna-Jiménez et al. (2021), Section 3.3 and
Appendix A (Table A1): a *localization network* reads the frame's visual saliency map and
regresses the six parameters of an affine transform (initialised to the identity); the
*sampler* (``affine_grid`` + ``grid_sample``) warps the face image with it; a simple CNN
classifies the warped image::

    saliency 1x48x48 -> conv7x7(8) 42 -> maxpool 21 -> relu -> conv5x5(10) 17 -> maxpool 8 -> relu
        -> flatten 640 -> fc 32 -> relu -> fc 6 (theta, 2x3)
    image 1x48x48 --warp(theta)--> conv3x3(10) 46 -> relu -> conv3x3(10) 44 -> maxpool 22 -> relu
        -> conv3x3(10) 20 -> relu -> conv3x3(10) 18 -> batchnorm -> maxpool 9 -> relu -> dropout(0.5)
        -> flatten 810 -> fc 50 -> relu -> fc n_classes

Parameter and buffer names follow the authors' ``Deep_Emotion_Saliency`` class
(``conv1``..``conv4``, ``norm``, ``fc1``, ``fc2``, ``localization.{0,3}``, ``fc_loc.{0,2}``) so
their public checkpoints (bare ``state_dict`` files; 3-class sentiment or 7-class emotion heads
trained on AffectNet) load with :func:`load_stn_checkpoint`. With 8 classes the model has
66,928 trainable parameters.

The sampler uses ``align_corners=False`` (PyTorch's default since 1.3, which the authors'
2021 code relied on); with it the identity theta reproduces the input exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from emokit_core.checkpoints import key_differences, load_state
from emokit_core.errors import WeightsError

__all__ = [
    "IMAGE_SIZE",
    "FLATTEN_DIM",
    "EMBED_DIM",
    "OUTPUT_MODES",
    "SaliencyGuidedSTN",
    "WeightsError",
    "load_stn_checkpoint",
]

IMAGE_SIZE = 48
FLATTEN_DIM = 810  # 10 channels x 9 x 9 after the second pooling
EMBED_DIM = 50  # the fc50 layer
LOC_DIM = 640  # 10 channels x 8 x 8 at the end of the localization network
OUTPUT_MODES = ("logits", "posteriors", "fc50", "flatten")
_HEAD_KEYS = ("fc2.weight", "fc2.bias")
_CHECKPOINT_HINT = ("pass a state dict saved from the authors' Deep_Emotion_Saliency model (or this "
                    "SaliencyGuidedSTN), as a bare dict of tensors or wrapped as {'state_dict': ...} "
                    "or {'model': ...}, written with torch.save")


class SaliencyGuidedSTN(nn.Module):
    """The STN of Table A1: saliency-driven affine warp of the face, then a simple CNN.

    ``forward(image, saliency, output=...)`` takes two ``[B, 1, 48, 48]`` float tensors and
    returns, per ``output``:

    * ``"logits"`` (default): ``[B, n_classes]`` class scores (the last fully connected layer);
    * ``"posteriors"``: their softmax, ``[B, n_classes]``, rows summing to 1;
    * ``"fc50"``: the 50-dimensional embedding after the ReLU of ``fc1``, ``[B, 50]``;
    * ``"flatten"``: the 810-dimensional flattened conv features that feed ``fc1``, ``[B, 810]``.

    Dropout (p = ``dropout``, 0.5 as in Table A1) acts on the 10x9x9 maps only in training mode.
    """

    def __init__(self, n_classes: int = 8, dropout: float = 0.5):
        super().__init__()
        if int(n_classes) < 1:
            raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.dropout_p = float(dropout)

        # Simple CNN on the warped image.
        self.conv1 = nn.Conv2d(1, 10, kernel_size=3)
        self.conv2 = nn.Conv2d(10, 10, kernel_size=3)
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv3 = nn.Conv2d(10, 10, kernel_size=3)
        self.conv4 = nn.Conv2d(10, 10, kernel_size=3)
        self.pool4 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.norm = nn.BatchNorm2d(10)
        self.fc1 = nn.Linear(FLATTEN_DIM, EMBED_DIM)
        self.fc2 = nn.Linear(EMBED_DIM, int(n_classes))

        # Localization network on the saliency map (indices 0 and 3 hold the weights).
        self.localization = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=7),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(8, 10, kernel_size=5),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.ReLU(inplace=True),
        )
        # Regressor of theta (indices 0 and 2 hold the weights).
        self.fc_loc = nn.Sequential(
            nn.Linear(LOC_DIM, 32),
            nn.ReLU(inplace=True),
            nn.Linear(32, 6),
        )
        self.reset_theta()

    # -- configuration -----------------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        return int(self.fc2.out_features)

    @property
    def config(self) -> dict[str, Any]:
        return {"n_classes": self.n_classes, "dropout": self.dropout_p}

    def reset_theta(self) -> None:
        """Make the theta regressor output the identity transform for any saliency map."""
        with torch.no_grad():
            self.fc_loc[2].weight.zero_()
            self.fc_loc[2].bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))

    def replace_head(self, n_classes: int) -> nn.Linear:
        """Swap the class layer for a freshly initialised ``Linear(50, n_classes)`` (fine-tuning)."""
        if int(n_classes) < 1:
            raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
        old = self.fc2
        self.fc2 = nn.Linear(EMBED_DIM, int(n_classes)).to(device=old.weight.device, dtype=old.weight.dtype)
        return self.fc2

    # -- the spatial transformer -------------------------------------------------------------
    @staticmethod
    def _check_input(name: str, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"{name} must have shape [B, 1, {IMAGE_SIZE}, {IMAGE_SIZE}], got {list(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")

    def theta(self, saliency: torch.Tensor) -> torch.Tensor:
        """The affine parameters ``[B, 2, 3]`` regressed from the saliency maps."""
        self._check_input("saliency", saliency)
        feats = self.localization(saliency).flatten(1)  # [B, 640]
        return self.fc_loc(feats).view(-1, 2, 3)

    def warp(self, image: torch.Tensor, saliency: torch.Tensor) -> torch.Tensor:
        """The face image resampled with the theta that the saliency map yields."""
        self._check_input("image", image)
        if image.shape[0] != saliency.shape[0]:
            raise ValueError(f"image and saliency batch sizes differ: {image.shape[0]} vs {saliency.shape[0]}")
        theta = self.theta(saliency).to(image.dtype)
        grid = F.affine_grid(theta, list(image.shape), align_corners=False)
        return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    # -- the classifier ----------------------------------------------------------------------
    def _flatten(self, warped: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(warped))
        x = F.relu(self.pool2(self.conv2(x)))
        x = F.relu(self.conv3(x))
        x = F.relu(self.pool4(self.norm(self.conv4(x))))
        x = F.dropout(x, p=self.dropout_p, training=self.training)
        return x.flatten(1)  # [B, 810]

    def forward(self, image: torch.Tensor, saliency: torch.Tensor, output: str = "logits") -> torch.Tensor:
        if output not in OUTPUT_MODES:
            raise ValueError(f"output must be one of {', '.join(OUTPUT_MODES)}; got {output!r}")
        flat = self._flatten(self.warp(image, saliency))
        if output == "flatten":
            return flat
        emb = F.relu(self.fc1(flat))
        if output == "fc50":
            return emb
        logits = self.fc2(emb)
        if output == "posteriors":
            return torch.softmax(logits, dim=1)
        return logits


# -- checkpoints -----------------------------------------------------------------------------
def load_stn_checkpoint(model: SaliencyGuidedSTN, path_or_state: str | Path | Mapping,
                        n_classes: int | None = 8) -> dict[str, Any]:
    """Load a saliency-STN checkpoint into ``model``; its class layer ends with ``n_classes`` outputs
    (``None``: the file's own, e.g. for a frozen STN whose posteriors are its source classes).

    ``path_or_state``: a file (read with ``torch.load(weights_only=True, map_location="cpu")``),
    a bare state dict, or a dict wrapping one under ``"state_dict"`` or ``"model"``.
    Every key except the class layer (``fc2``) must match the upstream ``Deep_Emotion_Saliency``
    layout in name and shape (a missing ``norm.num_batches_tracked`` is tolerated). When the
    file's class layer has ``n_classes`` outputs it is loaded too; otherwise (e.g. the 3-class
    AffectNet sentiment model fine-tuned to RAVDESS's 8 emotions) ``model.fc2`` becomes a fresh
    ``Linear(50, n_classes)`` and the file's head is dropped. Everything is checked before any
    weight is written, so a failed load leaves ``model`` untouched.

    Raises :class:`WeightsError` (naming the file) for an unreadable or truncated file and for
    a state dict of another architecture (listing missing / unexpected / mismatched keys).
    Returns ``{"source", "sha256" (None for dicts), "file_classes", "n_classes",
    "head_replaced", "n_tensors", "extra_keys"}``.
    """
    if n_classes is not None and int(n_classes) < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    state, extra, source, sha256 = load_state(path_or_state, _CHECKPOINT_HINT,
                                              wrappers=("state_dict", "model", "model_state_dict", "net"))
    expected = {k: v for k, v in model.state_dict().items() if k not in _HEAD_KEYS}
    parts = key_differences(expected, {k: v for k, v in state.items() if k not in _HEAD_KEYS})
    missing_head = [k for k in _HEAD_KEYS if k not in state]
    if missing_head:
        parts.append(f"missing class layer ({', '.join(missing_head)})")
    head_w, head_b = state.get("fc2.weight"), state.get("fc2.bias")
    file_classes = None
    if head_w is not None and head_b is not None:
        if head_w.dim() != 2 or head_w.shape[1] != EMBED_DIM or head_b.shape != (head_w.shape[0],):
            parts.append(f"fc2: file weight {list(head_w.shape)} / bias {list(head_b.shape)} vs "
                         f"model [k, {EMBED_DIM}] / [k]")
        else:
            file_classes = int(head_w.shape[0])
    if parts:
        raise WeightsError(f"{source} does not fit SaliencyGuidedSTN (Deep_Emotion_Saliency layout): "
                           + "; ".join(parts), hint=_CHECKPOINT_HINT)

    body = {k: state[k] for k in expected if k in state}
    for k, v in expected.items():  # files from torch < 0.4.1 lack num_batches_tracked
        if k not in body:
            body[k] = torch.zeros_like(v)
    if n_classes is None:
        if file_classes is None:
            raise WeightsError(f"{source} has no class layer to keep", hint=_CHECKPOINT_HINT)
        n_classes = file_classes
    head_replaced = file_classes != int(n_classes)
    if model.n_classes != file_classes or head_replaced:
        model.replace_head(int(n_classes) if head_replaced else file_classes)
    if not head_replaced:
        body["fc2.weight"], body["fc2.bias"] = head_w, head_b
    result = model.load_state_dict(body, strict=not head_replaced)
    if head_replaced and (result.missing_keys != list(_HEAD_KEYS) or result.unexpected_keys):
        raise WeightsError(f"{source}: unexpected load result {result}", hint=_CHECKPOINT_HINT)
    return {"source": source, "sha256": sha256, "file_classes": file_classes, "n_classes": model.n_classes,
            "head_replaced": head_replaced, "n_tensors": len(state), "extra_keys": extra}
