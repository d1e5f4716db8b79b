"""The edge runtime from Python: a ``.vdm`` model (``verdant export``) on NumPy arrays.

    model = verdant.edge.Model("m.vdm")
    model.predict(image)             # one sample -> its class (int)
    model.predict(images)            # a batch (N, ...) -> classes, int64 array (N,)
    model.run(images)                # logits, float32 (N, outputs)
    model.info()                     # shapes, layers, encodings, kernels, bytes, MACs
    model.latency()                  # per-inference latency, batch 1, timed in C++

A sample is ``(input_size,)``, ``(C, H, W)`` or, for one channel, ``(H, W)``; a batch adds a
leading N (``(N, input_size)`` is always a batch). float32 C-contiguous arrays are read in
place; uint8 arrays are pixels, scaled by the model's byte transform (what training's
normalisation was); other float layouts are copied once. Any other dtype is a TypeError, a
shape the model does not take a ValueError naming both.
"""
from __future__ import annotations

import errno
import os
from typing import Any, Dict, Optional

from . import _native


class Model:
    """A loaded ``.vdm`` edge model (memory-mapped; validated in full at load)."""

    def __init__(self, path: "os.PathLike[str] | str"):
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        self.path = path
        self._model = _native.EdgeModel(path)

    def predict(self, x: Any) -> Any:
        """Class of one sample (int), or of each sample of a batch (int64 array)."""
        return self._model.predict(x)

    def run(self, x: Any) -> Any:
        """Logits (float32): (outputs,) for one sample, (N, outputs) for a batch."""
        return self._model.run(x)

    def info(self) -> Dict[str, Any]:
        """Name, input shape (C, H, W), outputs, layers (kind, encoding, shapes), kernels,
        file bytes and MACs per inference."""
        return self._model.info()

    def latency(self, x: Any = None, runs: int = 1000, warmup: int = 10) -> Dict[str, Any]:
        """Latency of one inference at batch 1 on this thread, each call timed in C++ like
        ``verdant-edge run``: median, mean, p99 and min in microseconds. `x` is the sample
        (zeros when None)."""
        return self._model.latency(x, runs, warmup)

    @property
    def input_shape(self):
        return self._model.input_shape

    @property
    def input_size(self) -> int:
        return self._model.input_size

    @property
    def output_size(self) -> int:
        return self._model.output_size

    def __repr__(self) -> str:
        c, h, w = self.input_shape
        return f"<verdant.edge.Model {self.path!r}: {c}x{h}x{w} -> {self.output_size}>"
