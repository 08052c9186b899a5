"""Train the tiny transformer on the induction task and write
``resources/models/induction_transformer.safetensors``.

``python -m core.zoo.train_induction`` — deterministic (seed, one thread), about 40 s
on 2 CPU cores. Fresh random sequences every step; evaluation (the repeated half only)
on the fixed, seeded set the app uses.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

from core.zoo import tiny_transformer
from core.zoo.induction import IGNORE, eval_set, make_batch, next_token_targets
from core.zoo.weights import save_weights

SEED = 0
STEPS = 3000
BATCH = 64
LR = 1e-3


def accuracy(model: nn.Module) -> float:
    tokens, targets, _ = eval_set()
    with torch.inference_mode():
        pred = model(torch.from_numpy(tokens)).argmax(-1).numpy()
    mask = targets != IGNORE
    return float((pred[mask] == targets[mask]).mean())


def train(steps: int = STEPS) -> nn.Module:
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    rng = np.random.default_rng(SEED)
    model = tiny_transformer.build()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE)
    for step in range(steps):
        tokens, _, _ = make_batch(rng, BATCH)
        targets = next_token_targets(tokens)
        logits = model(torch.from_numpy(tokens))
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(targets).reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 500 == 499 or step == steps - 1:
            model.eval()
            print(f"step {step + 1:5d}  loss {loss.item():.4f}  eval acc {accuracy(model):.4f}")
            model.train()
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args()
    model = train(args.steps)
    out = save_weights(model, "induction_transformer.safetensors",
                       "core.zoo.train_induction", SEED)
    print(f"held-out accuracy {accuracy(model):.4f}\nwrote {out}")


if __name__ == "__main__":
    main()
