"""Every attention head of a Llama-like ``Sequential`` (SmolLM2) switched off alone,
without a hooked forward pass per head (issue #14).

One pass walks the blocks over the task set. At block ``l`` the intact stream entering
it is at hand; its attention runs once, the per-head outputs are copied nine times with
one head replaced (zero, or its per-position dataset mean), and only blocks ``l..L-1``,
the final norm and — at the scored positions only — the unembedding run on the nine
replicas together. Positions after the last scored one are dropped from the start
(causal attention: they cannot change an earlier answer).

The replicas add up the same terms as the hooked path in other batch shapes, so an
answer whose two best logits lie within rounding (see
:data:`core.analysis.evaluate.CLOSE_CALL`) is flagged for the caller to rescore by the
direct path; everything else is decided here.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch
from torch import nn

from core.jobs import CancelToken, check, report

_BLOCK_PARTS = ("resid_pre", "attn_norm", "attn", "resid_mid", "mlp_norm", "mlp")
_ATTN_PARTS = ("q_proj", "k_proj", "v_proj", "o_proj", "heads")


def supports(adapter) -> bool:
    """Whether ``adapter`` is a torch ``Sequential`` embed → block0 … → norm → unembed
    whose blocks have the SmolLM2 sites this shortcut relies on."""
    model = getattr(adapter, "model", None)
    if not isinstance(model, nn.Sequential):
        return False
    names = [n for n, _ in model.named_children()]
    blocks = [n for n in names if n.startswith("block")]
    if names[:1] != ["embed"] or names[-2:] != ["norm", "unembed"] or not blocks:
        return False
    if names[1:-2] != blocks:
        return False
    for name in blocks:
        block = model.get_submodule(name)
        if not all(hasattr(block, p) for p in _BLOCK_PARTS):
            return False
        if not all(hasattr(block.attn, p) for p in _ATTN_PARTS):
            return False
    return True


def heads_sites(model: nn.Sequential) -> tuple[str, ...]:
    return tuple(f"{n}.attn.heads" for n, _ in model.named_children() if n.startswith("block"))


@dataclass(frozen=True)
class LayerScores:
    """One layer's heads, each switched off alone, at the scored answers.

    ``correct`` (H, S) bool, ``log_prob`` (H, S) float32 (of the right answer),
    ``close`` (H, S) bool: the two best logits lie within rounding of each other.
    """

    site: str
    correct: np.ndarray
    log_prob: np.ndarray
    close: np.ndarray


@contextmanager
def _captured(module: nn.Module, store: dict) -> Iterator[None]:
    handle = module.register_forward_hook(lambda _m, _i, out: store.__setitem__("z", out))
    try:
        yield
    finally:
        handle.remove()


def sweep(model: nn.Sequential, inputs: np.ndarray, labels: np.ndarray, mode: str,
          means: dict, close_margin: float,
          token: Optional[CancelToken] = None,
          on_layer: Optional[Callable[[LayerScores], None]] = None,
          layers: Optional[Sequence[int]] = None) -> list[LayerScores]:
    """Each head of every block ablated alone.

    ``inputs`` (N, T) token ids; ``labels`` (N, T), negative where not scored;
    ``means``: heads site -> (H, T, D_HEAD) per-position mean (``mode == "mean"``).
    Answers are listed row-major, as the evaluator lists its scored labels.
    ``layers``: only these block indices (the walk stops after the last of them).
    """
    rows, cols = np.nonzero(labels >= 0)
    t_eff = int(cols.max()) + 1 if len(cols) else 1
    answers = torch.from_numpy(labels[rows, cols].astype(np.int64))
    rows_t, cols_t = torch.from_numpy(rows), torch.from_numpy(cols)
    children = dict(model.named_children())
    blocks = [n for n in children if n.startswith("block")]
    wanted = set(range(len(blocks)) if layers is None else layers)
    out = []
    with torch.inference_mode():
        x = children["embed"](torch.from_numpy(np.array(inputs[:, :t_eff],
                                                                    np.int64)))
        for i, name in enumerate(blocks):
            if i > max(wanted, default=-1):
                break
            if i not in wanted:
                x = children[name](x)
                continue
            check(token)
            report(token, i / len(blocks), f"heads of {name}: {i}/{len(blocks)}")
            block = children[name]
            site = f"{name}.attn.heads"
            fill = None
            if mode == "mean":
                fill = torch.from_numpy(np.ascontiguousarray(means[site][:, :t_eff]))
            y = _ablated_block(block, x, fill)                  # (H * N, T, D)
            for later in blocks[i + 1:]:
                check(token)  # the first layer's walk is nine forwards: stay cancellable
                y = children[later](y)
            scores = _score(children["norm"], children["unembed"], y, len(x), rows_t,
                            cols_t, answers, close_margin)
            layer = LayerScores(site, *scores)
            out.append(layer)
            if on_layer is not None:
                on_layer(layer)
            x = block(x)
    report(token, 1.0, "heads: done")
    return out


def _ablated_block(block: nn.Module, x: torch.Tensor,
                   fill: Optional[torch.Tensor]) -> torch.Tensor:
    """Block ``block`` on ``x`` (N, T, D) once per head, that head's output replaced by
    ``fill`` (H, T, D_HEAD; zero when ``None``): (H * N, T, D), replica-major."""
    attn = block.attn
    store: dict = {}
    with _captured(attn.heads, store):
        attn(block.attn_norm(x))
    z = store["z"]                                          # (N, H, T, D_HEAD)
    n, h, t, d = z.shape
    rep = z.unsqueeze(0).repeat(h, 1, 1, 1, 1)              # (H, N, H, T, D_HEAD)
    idx = torch.arange(h)
    rep[idx, :, idx] = 0.0 if fill is None else fill.unsqueeze(1).to(z.dtype)
    z_flat = rep.reshape(h * n, h, t, d).transpose(1, 2).reshape(h * n, t, h * d)
    mid = x.repeat(h, 1, 1) + attn.o_proj(z_flat)
    return mid + block.mlp(block.mlp_norm(mid))


def _score(norm: nn.Module, unembed: nn.Module, y: torch.Tensor, n: int,
           rows: torch.Tensor, cols: torch.Tensor, answers: torch.Tensor,
           close_margin: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Right or wrong, log-probability and close call of every replica's scored
    answers; the unembedding runs on the scored positions only, one replica at a time
    (all nine at once would hold (9, S, 49152) logits)."""
    h = len(y) // n
    y = y.reshape(h, n, *y.shape[1:])
    correct, log_prob, close = [], [], []
    for r in range(h):
        logits = unembed(norm(y[r, rows, cols]))            # (S, K)
        top = logits.topk(2, dim=-1).values
        best = top[:, 0]
        pick = logits.gather(1, answers[:, None])[:, 0]
        correct.append((logits.argmax(-1) == answers).numpy())
        shifted = logits - best[:, None]
        log_prob.append((pick - best - shifted.exp().sum(-1).log()).numpy())
        close.append((top[:, 1] >= best - close_margin * (1 + best.abs())).numpy())
    return np.stack(correct), np.stack(log_prob), np.stack(close)
