"""An MNIST-like model (1x28x28, normalised with MNIST's mean/std), trained at test
time on the digits resized to 28x28 and exported to ONNX: "a model from a tutorial"."""

import warnings
from pathlib import Path

import torch
from torch import nn

from core.datasets import digits_split
from core.files.preprocess import InputSpec

#: The exported file per number of training steps: training is seeded, so a second test
#: that asks for the same model gets a copy instead of training it again (~10 s).
_EXPORTED: dict[int, bytes] = {}


def make(path, steps=60):
    spec = InputSpec(1, 28, 28, 0.0, 1.0, 0.1307, 0.3081)
    path = Path(path)
    if steps not in _EXPORTED:
        _train_and_export(path, spec, steps)
        _EXPORTED[steps] = path.read_bytes()
    else:
        path.write_bytes(_EXPORTED[steps])
    return spec


def _train_and_export(path, spec, steps):
    torch.manual_seed(0)
    images, labels = digits_split("train")
    x = torch.from_numpy(spec.apply(images / 16.0))
    y = torch.from_numpy(labels)
    model = nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(8 * 12 * 12, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(1, 1, 28, 28),), str(path), dynamo=False,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}})
