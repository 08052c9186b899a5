"""Models of architectures Mechscope does not ship, for the "any trusted architecture"
tests (issue #15). In an importable module so that a pickled instance unpickles in
the compute process too."""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    """A residual block: two instances share one TorchScript graph (type sharing)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x)) + x


class Residual(nn.Module):
    """Three convolutions, a residual add and two blocks of one class."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 6, 3, padding=1)
        self.block1 = Block(6)
        self.block2 = Block(6)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = self.block2(self.block1(x))
        return self.head(torch.flatten(self.pool(x), 1))


class Wide(nn.Module):
    """A custom CNN that is not an nn.Sequential, for pickling whole."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 5, 3, padding=1), nn.ReLU(),
                                      nn.MaxPool2d(2))
        self.fc = nn.Linear(5 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


class Colour(nn.Module):
    """Reads 3×32×32 images (CIFAR-sized): no built-in dataset fits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 5)
        self.fc = nn.Linear(4 * 28 * 28, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


class Rows(nn.Module):
    """A tabular MLP: rows of 5 numbers, 3 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(5, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x)))


class Broken(nn.Module):
    """A model whose forward always fails."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if bool(y.sum() == y.sum()):
            raise RuntimeError("this model is broken on purpose")
        return y


def seeded(cls, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return cls().eval()


def trained(cls, steps: int = 40, seed: int = 0) -> nn.Module:
    """``cls()`` after a few steps of Adam on the digits' training split, so that
    accuracy and the effect of an ablation mean something."""
    from core.datasets import digits_split, digits_to_model

    model = seeded(cls, seed).train()
    images, labels = digits_split("train")
    x, y = torch.from_numpy(digits_to_model(images)), torch.from_numpy(labels)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    for step in range(steps):
        rows = slice((step * 128) % (len(x) - 128), (step * 128) % (len(x) - 128) + 128)
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x[rows]), y[rows]).backward()
        optimiser.step()
    return model.eval()
