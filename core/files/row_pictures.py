"""Small pictures of rows of numbers (a table's features, a signal): one bar per
feature, so that the example strip and a unit's top examples can show a tabular
model's inputs the way they show images (issue #15, :attr:`ModelKind.VALUES`)."""

from __future__ import annotations

import numpy as np

#: More features than this are averaged in consecutive groups: a bar a few pixels
#: wide stays legible in a 40-pixel thumbnail.
MAX_BARS = 32
HEIGHT = 16


class RowPictures:
    """Bars for rows of ``inputs`` (N, ...), each feature scaled by its own 1st–99th
    percentile over the whole set (features of a table have unrelated units), so a
    bar's height says where the example lies among the data."""

    def __init__(self, inputs: np.ndarray) -> None:
        rows = self._binned(np.asarray(inputs))
        if len(rows):
            self.low, high = np.percentile(rows, [1, 99], axis=0)
        else:
            self.low = high = np.zeros(rows.shape[1])
        self.span = np.where(high - self.low > 1e-12, high - self.low, 1.0)
        self.inputs = inputs

    @staticmethod
    def _binned(inputs: np.ndarray) -> np.ndarray:
        rows = np.asarray(inputs, np.float64).reshape(len(inputs), -1)
        if rows.shape[1] <= MAX_BARS:
            return rows
        groups = np.array_split(np.arange(rows.shape[1]), MAX_BARS)
        return np.stack([rows[:, g].mean(axis=1) for g in groups], axis=1)

    def levels(self, indices) -> np.ndarray:
        """(k, bars) 0..1: each chosen example's features on the set's scale."""
        rows = self._binned(np.asarray(self.inputs)[np.asarray(indices, np.int64)])
        return np.clip((rows - self.low) / self.span, 0.0, 1.0)

    def __call__(self, indices) -> np.ndarray:
        """(k, HEIGHT, bars) float32 0..1 pictures: a bar per feature, lit from below."""
        level = self.levels(indices)
        # Row r (from the top) is lit where the bar reaches above its middle.
        thresholds = (np.arange(HEIGHT)[::-1] + 0.5) / HEIGHT
        bars = level[:, None, :] >= thresholds[None, :, None]
        # Even an example at its feature's minimum shows a stub, and empty space stays dark.
        bars[:, -1, :] = True
        out = np.where(bars, 1.0, 0.08).astype(np.float32)
        out.setflags(write=False)
        return out
