"""A small tabular MLP of the user's own class (12 features -> 3 classes), trained in a
test on seeded synthetic rows, for the ModelKind.VALUES tests (issue #15). The class
lives in an importable module so that a pickled instance can be loaded again."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

FEATURES, CLASSES = 12, 3


class TabularMLP(nn.Sequential):
    """12 -> 16 -> 3 with a ReLU: ``hidden`` and ``relu`` are the neuron sites."""

    def __init__(self) -> None:
        super().__init__()
        self.add_module("hidden", nn.Linear(FEATURES, 16))
        self.add_module("relu", nn.ReLU())
        self.add_module("out", nn.Linear(16, CLASSES))


def synthetic_rows(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 12) float32 rows and (n,) labels: the class is where three features point."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    rows = rng.normal(0.0, 1.0, (n, FEATURES)).astype(np.float32)
    rows[np.arange(n), labels * 4] += 2.5  # features 0, 4, 8 say the class
    return rows, labels.astype(np.int64)


def trained_mlp(steps: int = 150, seed: int = 0) -> TabularMLP:
    """The MLP after ``steps`` full-batch Adam steps on the synthetic rows."""
    torch.manual_seed(seed)
    model = TabularMLP()
    rows, labels = synthetic_rows(seed=seed + 1)
    x, y = torch.from_numpy(rows), torch.from_numpy(labels)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()
