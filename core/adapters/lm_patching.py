"""Activation patching on a torch language model that is a ``Sequential`` of
``embed → block0 … blockN → (norm) → unembed`` (SmolLM2, the induction transformer).

What makes it cheap (issue #14): a patch at the stream entering block ``l`` changes
nothing before it, so each cell runs only the suffix ``block l … → unembed``, starting
from the corrupted run's cached stream with one position replaced; the positions of a
row go through that suffix as one batch, and the unembedding is read at the last
position only, as the one logit difference the metric needs. A row costs
``(L - l) / L`` of one forward per patched position, the grid about half of L × T
forwards. Positions whose clean and corrupted streams are bitwise equal (everything
before the first differing token, and at the embedding every unchanged token) are not
run at all: patching an equal value is the corrupted run itself.

Numpy in, numpy out; the caller (:mod:`core.analysis.patching`) caches the runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

_BLOCK = re.compile(r"block(\d+)$")


@dataclass(frozen=True)
class Run:
    """One unpatched run, what the patches need of it.

    ``streams`` (L + 1, T, D): the residual stream entering each block, then the final
    block's output; ``heads`` (L, H, T, Dh): each block's per-head outputs;
    ``logits`` (T, V)."""

    streams: np.ndarray
    heads: np.ndarray
    logits: np.ndarray


def _heads_child(block: nn.Module) -> str | None:
    """The block's per-head output module (the one the attention names as its heads)."""
    for name, module in block.named_modules():
        heads = getattr(module, "mechscope_heads", "")
        if heads and hasattr(module, heads):
            return f"{name}.{heads}" if name else heads
    return None


class LmPatching:
    """The patching forward passes of one model; :meth:`of` says whether it fits."""

    def __init__(self, model: nn.Sequential, blocks: list[str], heads: list[str]) -> None:
        self.model = model
        names = [n for n, _ in model.named_children()]
        children = dict(model.named_children())
        first = names.index(blocks[0])
        self.prefix = [children[n] for n in names[:first]]
        self.blocks = [children[n] for n in blocks]
        tail = [children[n] for n in names[names.index(blocks[-1]) + 1:]]
        self.norms, self.unembed = tail[:-1], tail[-1]
        self.block_names = blocks
        #: Site of each block's heads, relative to the model (``block3.attn.heads``).
        self.heads_sites = [f"{b}.{h}" for b, h in zip(blocks, heads)]
        self._heads_modules = [self.blocks[i].get_submodule(h) for i, h in enumerate(heads)]
        #: The site a row of the residual grid patches: the block's own ``resid_pre``
        #: where it has one, else the output of the child before it.
        self.stream_sites = [
            f"{b}.resid_pre" if hasattr(children[b], "resid_pre") else names[names.index(b) - 1]
            for b in blocks]
        last = children[blocks[-1]]
        self.stream_sites.append(f"{blocks[-1]}.resid_post" if hasattr(last, "resid_post")
                                 else blocks[-1])

    @classmethod
    def of(cls, model: object) -> LmPatching | None:
        """The patcher of ``model``, or ``None`` if it is not such a language model."""
        if not isinstance(model, nn.Sequential):
            return None
        names = [n for n, _ in model.named_children()]
        blocks = [n for n in names if _BLOCK.match(n)]
        if not blocks or blocks != [f"block{i}" for i in range(len(blocks))]:
            return None
        first, last = names.index(blocks[0]), names.index(blocks[-1])
        if first == 0 or last - first + 1 != len(blocks) or last == len(names) - 1:
            return None
        if not isinstance(model.get_submodule(names[-1]), nn.Linear):
            return None
        heads = [_heads_child(model.get_submodule(b)) for b in blocks]
        if any(h is None for h in heads):
            return None
        return cls(model, blocks, heads)

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    # --- unpatched runs ------------------------------------------------------------
    def run(self, tokens: np.ndarray) -> Run:
        """Embed ``tokens`` (T,), record every stream and every head's output."""
        heads: list[torch.Tensor] = []

        def keep(_m, _i, out):
            heads.append(out[0].clone())

        handles = [m.register_forward_hook(keep) for m in self._heads_modules]
        try:
            with torch.inference_mode():
                x = torch.from_numpy(np.asarray(tokens, np.int64)[None].copy())
                for module in self.prefix:
                    x = module(x)
                streams = []
                for block in self.blocks:
                    streams.append(x[0])
                    x = block(x)
                streams.append(x[0])
                logits = self._readout(x)[0]
        finally:
            for h in handles:
                h.remove()
        return Run(torch.stack(streams).numpy(), torch.stack(heads).numpy(), logits.numpy())

    def _readout(self, x: torch.Tensor) -> torch.Tensor:
        for norm in self.norms:
            x = norm(x)
        return self.unembed(x)

    def _diff(self, x: torch.Tensor, direction: torch.Tensor, offset: float) -> torch.Tensor:
        """``logit[a] - logit[b]`` at the last position of each batch item: the norm and
        one dot product, not the unembedding of every position and token."""
        h = x[:, -1:]
        for norm in self.norms:
            h = norm(h)
        return h[:, 0] @ direction + offset

    def direction(self, answer: int, other: int) -> tuple[torch.Tensor, float]:
        """The unembedding's ``row[answer] - row[other]`` (and its bias difference)."""
        w = self.unembed.weight.detach()
        bias = self.unembed.bias
        offset = 0.0 if bias is None else float(bias[answer] - bias[other])
        return (w[answer] - w[other]).clone(), offset

    def _suffix(self, layer: int, x: torch.Tensor, check: Callable[[], None]) -> torch.Tensor:
        for block in self.blocks[layer:]:
            check()
            x = block(x)
        return x

    # --- the grid's rows -------------------------------------------------------------
    def resid_row(self, layer: int, clean: Run, corrupt: Run, positions: np.ndarray,
                  answers: tuple[int, int], check: Callable[[], None]) -> np.ndarray:
        """Logit difference after patching the clean stream entering block ``layer``
        (``layer == n_layers``: the final stream) at each of ``positions``, one at a
        time, into the corrupted run: (len(positions),) float64."""
        positions = np.asarray(positions, np.int64)
        if not len(positions):
            return np.zeros(0)
        direction, offset = self.direction(*answers)
        with torch.inference_mode():
            base = torch.from_numpy(corrupt.streams[layer])
            x = base.repeat(len(positions), 1, 1)
            rows = torch.arange(len(positions))
            cols = torch.from_numpy(positions)
            x[rows, cols] = torch.from_numpy(clean.streams[layer])[cols]
            x = self._suffix(layer, x, check)
            return self._diff(x, direction, offset).double().numpy()

    def heads_row(self, layer: int, clean: Run, corrupt: Run, heads: np.ndarray,
                  answers: tuple[int, int], check: Callable[[], None]) -> np.ndarray:
        """Logit difference after patching each of ``heads`` of block ``layer`` (its
        output at every position) from the clean run into the corrupted one."""
        heads = np.asarray(heads, np.int64)
        if not len(heads):
            return np.zeros(0)
        direction, offset = self.direction(*answers)
        with torch.inference_mode():
            x = torch.from_numpy(corrupt.streams[layer]).repeat(len(heads), 1, 1)
            x = self._patched_heads(layer, x, heads, clean, check)
            return self._diff(x, direction, offset).double().numpy()

    def _patched_heads(self, layer: int, x: torch.Tensor, heads: np.ndarray, clean: Run,
                       check: Callable[[], None]) -> torch.Tensor:
        """Block ``layer`` with batch item ``i``'s head ``heads[i]`` replaced by the clean
        run's, then the blocks after it."""
        source = torch.from_numpy(clean.heads[layer])
        items, idx = torch.arange(len(heads)), torch.from_numpy(heads)

        def patch(_m, _i, out):
            out = out.clone()
            out[items, idx] = source[idx]
            return out

        handle = self._heads_modules[layer].register_forward_hook(patch)
        try:
            check()
            x = self.blocks[layer](x)
        finally:
            handle.remove()
        return self._suffix(layer + 1, x, check)

    # --- one cell, every token -------------------------------------------------------
    def cell_logits(self, kind: str, row: int, column: int, clean: Run, corrupt: Run,
                    check: Callable[[], None]) -> np.ndarray:
        """(T, V) logits of the corrupted run with one cell patched."""
        with torch.inference_mode():
            x = torch.from_numpy(corrupt.streams[row]).clone()[None]
            if kind == "resid":
                x[0, column] = torch.from_numpy(clean.streams[row][column])
                x = self._suffix(row, x, check)
            else:
                x = self._patched_heads(row, x, np.array([column]), clean, check)
            return self._readout(x)[0].numpy()
