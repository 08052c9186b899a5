"""The shipped digits CNN: small enough to read, big enough to have legible channels.

A top-level ``nn.Sequential`` with named children, so every layer is a capture site with
a short stable name and an ablation can re-run only the layers after it.
Input: (N, 1, 16, 16), the 8x8 digits upsampled 2x.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn


def build() -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 16, kernel_size=3, padding=1)),   # 16 x 16 x 16
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)),                              # 16 x 8 x 8
        ("conv2", nn.Conv2d(16, 32, kernel_size=3, padding=1)),  # 32 x 8 x 8
        ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(2)),                              # 32 x 4 x 4
        ("flatten", nn.Flatten()),                               # 512
        ("fc1", nn.Linear(32 * 4 * 4, 64)),
        ("relu3", nn.ReLU()),
        ("fc2", nn.Linear(64, 10)),                              # logits
    ]))
