"""emokit's own GE2E speaker encoder (Wan et al. 2018, "Generalized End-to-End Loss for Speaker
Verification"), the network of resemblyzer's ``VoiceEncoder``, and the loading of its checkpoint.

Three stacked LSTM layers (40 mel bands -> 256 -> 256 -> 256, batch first) read a utterance's
frames; the speaker embedding is ReLU(linear 256 -> 256) of the last layer's final hidden
state, L2-normed.  emokit uses the last layer's per-frame outputs as emotion features
(``emokit_plugins.ge2e.extractor``).  The checkpoint is resemblyzer 0.1.4's ``pretrained.pt``
read unchanged: ``{"step", "model_state", "optimizer_state"}``, whose ``model_state`` holds
exactly this module's state dict, GE2E's two similarity parameters included; it is loaded
strictly, and anything else is a :class:`~emokit_core.errors.WeightsError` naming the file.
The ``resemblyzer`` package itself is never imported.

The mel front end lives in ``extractor.py``, so that the decoding workers that compute it
need not import torch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from emokit_core.checkpoints import key_differences, load_state
from emokit_core.errors import WeightsError

N_MELS = 40
HIDDEN = 256
LAYERS = 3
EMBEDDING = 256
REQUIREMENT = "resemblyzer==0.1.4"
HINT = (f"the GE2E weights are resemblyzer/pretrained.pt of the Resemblyzer wheel (pip install --no-deps "
        f"{REQUIREMENT}; weights=ge2e-resemblyzer), or a checkpoint of the same network")
#: Sequences longer than this many frames (30 s) run through the LSTM in pieces, its state carried
#: from one to the next: the same outputs, with memory bounded however long a clip is.
STREAM_FRAMES = 3000


class Ge2eEncoder(nn.Module):
    """resemblyzer's voice encoder: ``lstm`` (40 -> 256, 3 layers), ``linear`` (256 -> 256), and
    GE2E's learnable similarity scale and bias, which only the training loss uses (kept so that
    the checkpoint's state dict loads key for key)."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, EMBEDDING)
        self.similarity_weight = nn.Parameter(torch.tensor([10.0]))  # the paper's initial w and b
        self.similarity_bias = nn.Parameter(torch.tensor([-5.0]))

    def forward(self, mels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[batch, frames, 40]`` mels of equal length -> (the last LSTM layer's output for every
        frame ``[batch, frames, 256]``, the L2-normed embedding ``[batch, 256]``)."""
        frames, (hidden, _) = self.lstm(mels)
        return frames, self.embed(hidden[-1])

    def embed(self, last_hidden: torch.Tensor) -> torch.Tensor:
        raw = torch.relu(self.linear(last_hidden))
        return raw / torch.linalg.vector_norm(raw, dim=1, keepdim=True)


def load_encoder(weights: Any, sha256: str | None = None) -> Ge2eEncoder:
    """The encoder with the weights of ``weights`` (a checkpoint file, or a state dict), in eval
    mode on the CPU.  ``sha256``: what the file must hash to (the runner resolved and checked it)."""
    state, _, source, found = load_state(weights, HINT, wrappers=("model_state", "model", "state_dict"))
    if sha256 is not None and found is not None and found != sha256:
        raise WeightsError(f"{source} has SHA-256 {found[:12]}…, not the {sha256[:12]}… it was resolved with; "
                           f"it changed since the run started", HINT)
    net = Ge2eEncoder()
    problems = key_differences(net.state_dict(), state)
    if problems:
        raise WeightsError(f"{source} does not fit emokit's GE2E encoder (LSTM 40 -> 256 x 3, linear 256 -> 256): "
                           + "; ".join(problems), HINT)
    net.load_state_dict(state, strict=True)
    return net.eval()


def pooled_frames(net: Ge2eEncoder, mels: list[Any], device: str) -> torch.Tensor:
    """Mean and standard deviation over each clip's frames of the last LSTM layer's outputs,
    ``[clips, 512]`` float64 on the CPU, for clips of any lengths (``mels``: ``[frames_i, 40]``
    arrays, each run as its own sequence: a clip's result never depends on the others).

    The clips run together, longest first, as one packed batch, and in pieces of
    ``STREAM_FRAMES`` frames with the LSTM state carried over; the pooled sums accumulate in
    float64.  The last layer's output at a frame is its hidden state there, so each piece's
    returned state (taken at every clip's own last frame) is the next piece's initial state.
    """
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    lengths = [len(m) for m in mels]
    if min(lengths, default=1) < 1:
        raise ValueError("every clip needs at least one mel frame")
    order = sorted(range(len(mels)), key=lambda i: -lengths[i])
    sorted_lengths = torch.tensor([lengths[i] for i in order])
    total = torch.zeros(len(mels), HIDDEN, dtype=torch.float64, device=device)
    squares = torch.zeros_like(total)
    h = torch.zeros(LAYERS, len(mels), HIDDEN, device=device)
    c = torch.zeros_like(h)
    for start in range(0, int(sorted_lengths[0]) if mels else 0, STREAM_FRAMES):
        active = int((sorted_lengths > start).sum())  # a prefix: the clips are longest first
        steps = (sorted_lengths[:active] - start).clamp(max=STREAM_FRAMES)
        piece = torch.zeros(active, int(steps[0]), N_MELS)
        for row, i in enumerate(order[:active]):
            piece[row, : int(steps[row])] = torch.as_tensor(mels[i][start: start + int(steps[row])])
        packed = pack_padded_sequence(piece.to(device), steps, batch_first=True, enforce_sorted=True)
        out, (h_new, c_new) = net.lstm(packed, (h[:, :active].contiguous(), c[:, :active].contiguous()))
        frames, _ = pad_packed_sequence(out, batch_first=True)  # zeros past each clip's end
        frames = frames.double()
        total[:active] += frames.sum(dim=1)
        squares[:active] += (frames * frames).sum(dim=1)
        h, c = torch.cat([h_new, h[:, active:]], dim=1), torch.cat([c_new, c[:, active:]], dim=1)
    n = sorted_lengths.to(device=device, dtype=torch.float64)[:, None]
    mean = total / n
    std = (squares / n - mean * mean).clamp(min=0.0).sqrt()
    pooled = torch.cat([mean, std], dim=1).cpu()
    out = torch.empty_like(pooled)
    out[torch.tensor(order)] = pooled
    return out

