"""The logit lens in torch: every residual stream of one prompt read through the
model's final norm and unembedding (issue #14).

One hooked forward captures the streams (the embedding, then each block's stream after
attention and after the MLP) and stops after the last block: its final norm and
unembedding are the lens's last row, so the model's own output is computed once, by
the lens. The streams are then normed together and unembedded a few rows at a time —
all 61 rows of a 64-token prompt at once would be 61 × 64 × 49,152 float32 logits
(770 MB). Each chunk is reduced in place to what the view shows (top tokens, their
probabilities, the target's) before the next is made.
"""

from __future__ import annotations

import re
from typing import Mapping, Optional, Sequence

import numpy as np
import torch

from core.ablation import Ablation
from core.adapters import torch_hooks
from core.errors import InputError
from core.jobs import CancelToken, check, report

NOT_AN_LM = ("The logit lens needs a language model with a final norm and unembedding, "
             "such as smollm2-135m.")
#: Cells (row × position) unembedded per chunk: 384 × 49,152 float32 logits = 75 MB,
#: large enough for the matrix product to run at full speed.
CHUNK_CELLS = 384
#: Vocabulary entries per block of the exact two-stage top-k (see :func:`top_k`).
TOP_BLOCK = 128


def rows_of(model: torch.nn.Module) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The lens's rows (sites in forward order) and their labels, or
    :class:`InputError` when ``model`` is not a language model of named streams."""
    modules = dict(model.named_modules())
    children = dict(model.named_children())
    blocks = sorted(int(m.group(1)) for name in children
                    if (m := re.fullmatch(r"block(\d+)", name)))
    if (not blocks or blocks != list(range(len(blocks))) or "norm" not in children
            or not isinstance(children.get("unembed"), torch.nn.Linear)
            or "block0.resid_pre" not in modules):
        raise InputError(NOT_AN_LM)
    sites, labels = ["block0.resid_pre"], ["embed"]
    for i in blocks:
        for part, label in (("resid_mid", "attn"), ("resid_post", "mlp")):
            if f"block{i}.{part}" not in modules:
                raise InputError(NOT_AN_LM)
            sites.append(f"block{i}.{part}")
            labels.append(f"{i} {label}")
    return tuple(sites), tuple(labels)


def top_k(values: torch.Tensor, k: int, block: int = TOP_BLOCK):
    """``values.topk(k, -1)`` of a (C, V) tensor, in two cheap passes: the maximum of
    each block of ``block`` entries, then a top-k among the k best blocks only. Exact:
    each of the k largest entries lies in a block whose maximum is at least as large,
    and at most k blocks reach the k-th largest value."""
    c, v = values.shape
    if v % block or v // block < k:
        return values.topk(k, -1)
    blocks = values.view(c, v // block, block)
    _, best = blocks.amax(-1).topk(k, -1)
    candidates = blocks.gather(1, best.unsqueeze(-1).expand(c, k, block))
    top, where = candidates.reshape(c, k * block).topk(k, -1)
    ids = best.gather(1, where // block) * block + where % block
    return top, ids


def _stacked(captured: Mapping[str, torch.Tensor], sites: Sequence[str]) -> torch.Tensor:
    """(R, T, D): the batch of one prompt, stream by stream."""
    return torch.cat([captured[site] for site in sites], dim=0)


def read(adapter, tokens: np.ndarray, target: Optional[int] = None,
         ablations: Sequence[Ablation] = (), means: Optional[Mapping] = None,
         k: int = 10, token: Optional[CancelToken] = None):
    """The lens of the prompt ``tokens`` (T,) int64 on a torch adapter.

    Returns ``(sites, labels, top_ids (R, T, k) int64, top_probs (R, T, k) float32,
    target_probs (R, T) float32 or None)``. Ablations act as in the forward pass; one
    on the final norm or unembedding acts on every row's readout, as it does on the
    output."""
    model = getattr(adapter, "model", None)
    if not isinstance(model, torch.nn.Module):
        raise InputError(NOT_AN_LM)
    sites, labels = rows_of(model)
    unembed = model.get_submodule("unembed")
    vocab = unembed.out_features
    if target is not None and not 0 <= int(target) < vocab:
        raise InputError(f"The target token must be an id in 0..{vocab - 1}.")
    x = torch.from_numpy(np.ascontiguousarray(tokens, np.int64).reshape(1, -1))
    n_rows, t = len(sites), x.shape[1]
    report(token, 0.0, "reading the residual streams")
    axes = getattr(adapter, "_axes", None)
    with torch.inference_mode(), torch_hooks.installed(
            model, sites, ablations, means, sites[-1], False, axes=axes) as state:
        torch_hooks.forward(model, x)  # stops after the last stream
        streams = model.get_submodule("norm")(_stacked(state.captured, sites))
        state.captured.clear()
        top_ids = torch.empty(n_rows, t, k, dtype=torch.long)
        top_probs = torch.empty(n_rows, t, k)
        target_probs = None if target is None else torch.empty(n_rows, t)
        step = max(1, CHUNK_CELLS // t)
        for start in range(0, n_rows, step):
            check(token)
            stop = min(start + step, n_rows)
            logits = unembed(streams[start:stop])          # (r, T, V)
            flat = logits.view(-1, logits.shape[-1])
            # Softmax in place: the exponentials keep the order, so their top-k are
            # the logits' top-k, and the (r·T, V) buffer is never copied.
            flat.sub_(flat.amax(-1, keepdim=True)).exp_()
            total = flat.sum(-1, keepdim=True)
            top, ids = top_k(flat, k)
            top_probs[start:stop] = (top / total).view(stop - start, t, k)
            top_ids[start:stop] = ids.view(stop - start, t, k)
            if target_probs is not None:
                chosen = flat[:, int(target)] / total[:, 0]
                target_probs[start:stop] = chosen.view(stop - start, t)
            report(token, stop / n_rows, f"logit lens: {stop} of {n_rows} rows")
    never = torch_hooks.never_fired(state)
    if never:
        raise RuntimeError(f"Hooks on {never} never fired during the logit lens.")
    return (sites, labels, top_ids.numpy(), top_probs.numpy(),
            None if target_probs is None else target_probs.numpy())
