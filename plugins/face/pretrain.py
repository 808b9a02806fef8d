"""``emokit pretrain face.stn``: the saliency-guided STN of Table A1 trained on still face images
(a source corpus such as FER-2013), in the layout ``face.stn_vote`` and ``face.stn_bilstm``
load as ``weights=`` (the class layer is replaced where the class lists differ)."""

from __future__ import annotations

from pathlib import Path
from .frames import FaceSaliencyFrames
from .recognizer import STNFrameClassifier


class STNPretrainer:
    """The paper's frame recipe (Adam, lr 1e-3, batch 128, dropout 0.5, weighted cross-entropy)
    for ``epochs`` passes, keeping the epoch that scores best on a tenth of the training images."""

    architecture = "saliency-guided STN, Luna-Jiménez et al. 2021 Table A1 (face.stn_vote, face.stn_bilstm)"
    kind = "saliency-stn"

    def extractor(self) -> FaceSaliencyFrames:
        # the images are face crops already: the whole frame is the face
        return FaceSaliencyFrames(face_detector="centre")

    def model(self, epochs: int, seed: int, device: str) -> STNFrameClassifier:
        return STNFrameClassifier(max_epochs=epochs, patience=epochs, val_fraction=0.1, sampling="epochs",
                                  random_state=seed, device=device)

    def export(self, fitted: STNFrameClassifier, path: str | Path) -> None:
        import io

        import torch

        # through memory: torch names the archive after the file, and the same weights should be
        # the same bytes (and SHA-256) whatever they are called
        buffer = io.BytesIO()
        torch.save({k: v.contiguous() for k, v in fitted.state_.items()}, buffer)
        Path(path).write_bytes(buffer.getvalue())


def stn_pretrainer() -> STNPretrainer:
    return STNPretrainer()
