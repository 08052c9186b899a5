"""How a model wants its input: channels, size and value range — inferred where the
model says, otherwise asked once and remembered for that model (issue #6).

The built-in digits (8x8, 0..16) are converted to any such input, so a model trained
elsewhere (say on 28x28 MNIST, normalised with its mean and std) can be evaluated on
them straight away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.errors import ModelLoadError

#: Normalisations a newcomer meets in tutorials: (name, low, high, mean, std).
PRESETS = {
    "0..1": (0.0, 1.0, 0.0, 1.0),
    "-1..1": (-1.0, 1.0, 0.0, 1.0),
    "MNIST mean/std (0.1307, 0.3081)": (0.0, 1.0, 0.1307, 0.3081),
    "0..255": (0.0, 255.0, 0.0, 1.0),
}


@dataclass(frozen=True)
class InputSpec:
    """Pixels in 0..1 are mapped to ``low..high``, then ``(x - mean) / std``, then
    repeated over ``channels``, at ``height`` x ``width``."""

    channels: int
    height: int
    width: int
    low: float = 0.0
    high: float = 1.0
    mean: float = 0.0
    std: float = 1.0

    def describe(self) -> str:
        norm = f"{self.low:g}..{self.high:g}"
        if (self.mean, self.std) != (0.0, 1.0):
            norm += f", then (x − {self.mean:g}) / {self.std:g}"
        return f"{self.channels}×{self.height}×{self.width}, values {norm}"

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    def apply(self, gray: np.ndarray) -> np.ndarray:
        """(N, h, w) pictures in 0..1 -> (N, C, H, W) float32 model inputs."""
        resized = np.stack([np.asarray(Image.fromarray(g.astype(np.float32)).resize(
            (self.width, self.height), Image.BILINEAR), np.float32) for g in gray])
        x = self.low + np.clip(resized, 0, 1) * (self.high - self.low)
        x = (x - self.mean) / self.std
        return np.repeat(x[:, None], self.channels, axis=1).astype(np.float32)


def guess(input_shape: tuple, name: str = "The model") -> InputSpec:
    """A first guess from the model's input shape (C, H, W); raises ModelLoadError if
    the model does not read images."""
    if len(input_shape) != 3 or input_shape[0] not in (1, 3) or None in input_shape:
        raise ModelLoadError(f"{name} reads inputs of shape {input_shape}, not images "
                             "(channels, height, width); Mechscope has no dataset of that "
                             "shape yet.")
    return InputSpec(*input_shape)
