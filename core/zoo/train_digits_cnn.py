"""Train the digits CNN and write ``resources/models/digits_cnn.safetensors``.

``python -m core.zoo.train_digits_cnn`` — deterministic (fixed seed, one thread), about
15 seconds on 2 CPU cores. Trains on the 80 % train split only; reports accuracy on
the held-out 20 % the app evaluates on.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

from core.datasets import digits_split, digits_to_model
from core.zoo import digits_cnn
from core.zoo.weights import save_weights

SEED = 0
EPOCHS = 40
BATCH = 64
LR = 3e-3


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    with torch.inference_mode():
        logits = model(torch.from_numpy(digits_to_model(images)))
    return float((logits.argmax(1).numpy() == labels).mean())


def train(epochs: int = EPOCHS) -> nn.Module:
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    rng = np.random.default_rng(SEED)
    images, labels = digits_split("train")
    model = digits_cnn.build()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.from_numpy(digits_to_model(images))
    y = torch.from_numpy(labels)
    for epoch in range(epochs):
        model.train()

        order = torch.from_numpy(rng.permutation(len(labels)))
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
        sched.step()
        model.eval()
        if epoch % 5 == 4 or epoch == epochs - 1:
            print(f"epoch {epoch + 1:3d}  train acc {accuracy(model, images, labels):.4f}")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args()
    model = train(args.epochs)
    ev_images, ev_labels = digits_split("eval")
    print(f"held-out accuracy {accuracy(model, ev_images, ev_labels):.4f}")
    out = save_weights(model, "digits_cnn.safetensors", "core.zoo.train_digits_cnn", SEED)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
