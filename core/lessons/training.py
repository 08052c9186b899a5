"""Step-able, cancellable, seeded training of the three lesson models.

Every trainer does full-batch gradient steps on a small dataset, so a "step" is exactly
one update a newcomer can follow: the gradient of the loss with respect to each
parameter, times the learning rate, subtracted from it. After each step the trainer can
produce a :class:`Snapshot` of everything the training view draws.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import nn

from core.datasets import digits_split, digits_to_model, load_digits
from core.jobs import CancelToken, report
from core.lessons.snapshot import DEFAULT_LR, Snapshot

GRID = 60


class Trainer:
    """Base: owns a model, an optimiser and a loss history."""

    name = ""
    default_lr = 0.1

    def __init__(self, seed: int = 0, lr: Optional[float] = None) -> None:
        self.seed, self.lr = seed, lr if lr is not None else self.default_lr
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.model = self.build()
        self.steps = 0
        self.optimizer = self.make_optimizer()
        self.losses = [self.loss().item()]
        self.history = [self._flat_params()]

    def build(self) -> nn.Module:
        raise NotImplementedError

    def make_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.model.parameters(), lr=self.lr)

    def loss(self) -> torch.Tensor:
        raise NotImplementedError

    def set_lr(self, lr: float) -> None:
        self.lr = lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self, n: int = 1, token: Optional[CancelToken] = None) -> None:
        """``n`` gradient steps; checks ``token`` between steps."""
        for i in range(n):
            report(token, i / max(n, 1), f"step {self.steps + 1}")
            self.optimizer.zero_grad()
            loss = self.loss()
            loss.backward()
            self.optimizer.step()
            self.steps += 1
            with torch.no_grad():
                self.losses.append(self.loss().item())
            self.history.append(self._flat_params())

    def _flat_params(self) -> np.ndarray:
        """Every parameter as one vector, kept per step for tiny models only."""
        n = sum(p.numel() for p in self.model.parameters())
        if n > 16:
            return np.zeros(0)
        return np.concatenate([p.detach().numpy().ravel() for p in self.model.parameters()])

    def _tensors(self) -> tuple[dict, dict]:
        """The parameters and the gradient of the loss *at* them — what the next step
        will use. (The gradient left over from the last step belongs to the previous
        parameters: shown, it was one step late, and ∇ = 0 before the first step;
        issue #12.)"""
        self.optimizer.zero_grad()
        self.loss().backward()
        params, grads = {}, {}
        for name, p in self.model.named_parameters():
            params[name] = p.detach().numpy().copy()
            grads[name] = p.grad.detach().numpy().copy()
        self.optimizer.zero_grad()
        return params, grads

    def snapshot(self, sample: int = 0) -> Snapshot:
        params, grads = self._tensors()
        metric, metric_on = self.metric()
        data = self.plot_data(sample)
        data["history"] = np.array(self.history)  # (steps + 1, P); P = 0 for the MLP
        return Snapshot(self.name, self.steps, self.lr, self.seed, np.array(self.losses),
                        params, grads, metric, metric_on, data)

    def metric(self) -> tuple[Optional[float], str]:
        return None, ""

    def plot_data(self, sample: int) -> dict:
        return {}


class LinearRegression(Trainer):
    """y = w·x + b fitted to 40 noisy points by mean squared error."""

    name = "linear"
    default_lr = DEFAULT_LR["linear"]
    TRUE_W, TRUE_B, NOISE = 1.7, -0.8, 0.6

    def build(self) -> nn.Module:
        x = self.rng.uniform(-3, 3, size=40)
        y = self.TRUE_W * x + self.TRUE_B + self.rng.normal(0, self.NOISE, size=40)
        self.x = torch.tensor(x, dtype=torch.float32)[:, None]
        self.y = torch.tensor(y, dtype=torch.float32)[:, None]
        model = nn.Linear(1, 1)
        with torch.no_grad():  # start from w = b = 0 so the first steps are easy to follow
            model.weight.zero_()
            model.bias.zero_()
        return model

    def loss(self) -> torch.Tensor:
        return nn.functional.mse_loss(self.model(self.x), self.y)

    def plot_data(self, sample: int) -> dict:
        line_x = np.array([-3.2, 3.2], np.float32)
        with torch.no_grad():
            line_y = self.model(torch.from_numpy(line_x)[:, None]).numpy()[:, 0]
        return {"x": self.x.numpy()[:, 0], "y": self.y.numpy()[:, 0],
                "line_x": line_x, "line_y": line_y}


class LogisticRegression(Trainer):
    """Two classes of 2-D points separated by a line: sigmoid(w·x + b), cross-entropy."""

    name = "logistic"
    default_lr = DEFAULT_LR["logistic"]

    def build(self) -> nn.Module:
        n = 100
        a = self.rng.normal((-1.0, -0.8), 0.9, size=(n, 2))
        b = self.rng.normal((1.1, 0.9), 0.9, size=(n, 2))
        self.points = torch.tensor(np.vstack([a, b]), dtype=torch.float32)
        self.labels = torch.tensor([0.0] * n + [1.0] * n)[:, None]
        model = nn.Linear(2, 1)
        with torch.no_grad():
            model.weight.zero_()
            model.bias.zero_()
        return model

    def loss(self) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(self.model(self.points),
                                                              self.labels)

    def metric(self) -> tuple[Optional[float], str]:
        with torch.no_grad():
            pred = self.model(self.points) > 0
        return float((pred == (self.labels > 0.5)).float().mean()), "the 200 points"

    def plot_data(self, sample: int) -> dict:
        pts = self.points.numpy()
        lo, hi = pts.min(0) - 0.5, pts.max(0) + 0.5
        gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], GRID), np.linspace(lo[1], hi[1], GRID))
        grid = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)
        with torch.no_grad():
            prob = torch.sigmoid(self.model(grid)).numpy().reshape(GRID, GRID)
        return {"points": pts, "labels": self.labels.numpy()[:, 0], "prob": prob,
                "extent": (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))}


class DigitsMLP(Trainer):
    """The digits with one hidden layer of 16 ReLU neurons (full-batch Adam)."""

    name = "mlp"
    default_lr = DEFAULT_LR["mlp"]
    HIDDEN = 16

    def build(self) -> nn.Module:
        images, labels = digits_split("train")
        self.x = torch.from_numpy(digits_to_model(images))
        self.y = torch.from_numpy(labels)
        self.eval_set = load_digits("eval")
        return _mlp(self.HIDDEN)

    def make_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)

    def loss(self) -> torch.Tensor:
        return nn.functional.cross_entropy(self.model(self.x), self.y)

    def metric(self) -> tuple[Optional[float], str]:
        with torch.no_grad():
            logits = self.model(torch.from_numpy(np.array(self.eval_set.inputs)))
        acc = (logits.argmax(1).numpy() == self.eval_set.labels).mean()
        return float(acc), f"the {len(self.eval_set)} held-out digits"

    def plot_data(self, sample: int) -> dict:
        sample = int(np.clip(sample, 0, len(self.eval_set) - 1))
        x = torch.from_numpy(np.array(self.eval_set.inputs[sample:sample + 1]))
        with torch.no_grad():
            hidden = self.model[:3](x).numpy()[0]
            probs = torch.softmax(self.model(x), 1).numpy()[0]
        return {"hidden": hidden, "probs": probs, "sample": sample,
                "n_samples": len(self.eval_set),
                "image": self.eval_set.display[sample],
                "label": int(self.eval_set.labels[sample])}


def _mlp(hidden: int) -> nn.Sequential:
    from collections import OrderedDict

    return nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(16 * 16, hidden)),
        ("relu1", nn.ReLU()),
        ("fc2", nn.Linear(hidden, 10)),
    ]))


TRAINERS = {cls.name: cls for cls in (LinearRegression, LogisticRegression, DigitsMLP)}
