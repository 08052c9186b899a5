"""A 2-layer, attention-only transformer: the smallest model in which induction heads
form. Top level is a ``Sequential`` (embed → block0 → block1 → unembed) so an ablation
in block1 re-runs only block1 and the unembedding.

Capture sites of interest: ``block{i}.attn.pattern`` gives (N, heads, query, key)
attention weights; ablating units (heads) of ``block{i}.attn.heads`` switches heads off.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from core.zoo.induction import SEQ_LEN, VOCAB

D_MODEL, N_HEADS, N_LAYERS = 64, 4, 2


class Embed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.tok = nn.Embedding(len(VOCAB), D_MODEL)
        self.pos = nn.Embedding(SEQ_LEN, D_MODEL)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        return self.tok(tokens) + self.pos(positions)


class Pattern(nn.Module):
    """Softmax over keys as its own module, so a forward hook sees (and can replace)
    the attention pattern, as TransformerLens's ``hook_pattern`` does."""

    mechscope_view = "attention"

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.softmax(scores, dim=-1)


class HeadOutputs(nn.Module):
    """Each head's output (N, heads, T, d_head) before they are mixed: the site where a
    head is switched off. Zeroing it equals zeroing the head's pattern; mean-ablating it
    replaces what the head writes with its average (mean-ablating the *pattern* would
    keep a positional head such as a previous-token head working)."""

    mechscope_view = "attention"

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z


class Attention(nn.Module):
    mechscope_view = "attention"
    mechscope_pattern = "pattern"
    mechscope_heads = "heads"

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(D_MODEL, 3 * D_MODEL)
        self.pattern = Pattern()
        self.heads = HeadOutputs()
        self.out = nn.Linear(D_MODEL, D_MODEL)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, N_HEADS, D_MODEL // N_HEADS).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(D_MODEL // N_HEADS)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        pattern = self.pattern(scores.masked_fill(causal, float("-inf")))
        z = self.heads(pattern @ v).transpose(1, 2).reshape(n, t, D_MODEL)
        return self.out(z)


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = Attention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attn(x)


def build() -> nn.Sequential:
    layers: list[tuple[str, nn.Module]] = [("embed", Embed())]
    layers += [(f"block{i}", Block()) for i in range(N_LAYERS)]
    layers.append(("unembed", nn.Linear(D_MODEL, len(VOCAB))))
    return nn.Sequential(OrderedDict(layers))
