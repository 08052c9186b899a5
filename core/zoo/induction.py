"""The induction task: random letters, then the same letters again.

``^ Q F K B  Q F K B · ·``: from the second ``Q`` on, the next letter can be read off the
first copy: find where the current letter appeared before and copy what followed it.
That is what an induction head does; the repeat length varies (4–12) so no positional
shortcut solves it. Pure numpy, so the GUI side can tokenise without torch.
"""

from __future__ import annotations

import numpy as np

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
BOS, PAD = len(LETTERS), len(LETTERS) + 1
VOCAB = tuple(LETTERS) + ("^", "·")
MIN_REPEAT, MAX_REPEAT = 4, 12
SEQ_LEN = 1 + 2 * MAX_REPEAT
EVAL_SEED, EVAL_SIZE = 1234, 512
IGNORE = -1


def make_batch(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` sequences: tokens (n, SEQ_LEN) int64, targets (n, SEQ_LEN) int64 with
    ``IGNORE`` where the next token is not determined, groups (n, SEQ_LEN) int64: the
    1-based index within the repeat of the current token (``IGNORE`` elsewhere)."""
    tokens = np.full((n, SEQ_LEN), PAD, np.int64)
    targets = np.full((n, SEQ_LEN), IGNORE, np.int64)
    groups = np.full((n, SEQ_LEN), IGNORE, np.int64)
    tokens[:, 0] = BOS
    for i in range(n):
        length = int(rng.integers(MIN_REPEAT, MAX_REPEAT + 1))
        seq = rng.choice(len(LETTERS), size=length, replace=False)
        tokens[i, 1:1 + length] = seq
        tokens[i, 1 + length:1 + 2 * length] = seq
        for t in range(length + 1, 2 * length):  # current token is a repeat, next is too
            targets[i, t] = tokens[i, t + 1]
            groups[i, t] = t - length
    return tokens, targets, groups


def next_token_targets(tokens: np.ndarray) -> np.ndarray:
    """Training targets: the next token at every position up to the end of the repeat.

    First-half letters are random, but predicting them still pays (a letter never
    repeats before the copy), which gives some heads a job of their own; trained only on
    the repeat, every head became a redundant copy of the same circuit.
    """
    targets = np.full(tokens.shape, IGNORE, np.int64)
    for i, row in enumerate(tokens):
        end = int((row != PAD).sum()) - 1
        targets[i, :end] = row[1:end + 1]
    return targets


def eval_set() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixed evaluation set (seeded; identical on every machine)."""
    return make_batch(np.random.default_rng(EVAL_SEED), EVAL_SIZE)


def encode(text: str) -> np.ndarray:
    """Letters typed by a user -> token ids (1-D int64), BOS prepended.

    Spaces are ignored and case is folded. Raises ``ValueError`` with a readable message.
    """
    letters = [c for c in text.upper() if not c.isspace()]
    bad = sorted({c for c in letters if c not in LETTERS})
    if bad:
        raise ValueError(f"Only the letters A–Z are tokens of this model; not {' '.join(bad)}.")
    if len(letters) < 2:
        raise ValueError("Type at least two letters, e.g. ABCDEABCDE.")
    if len(letters) > SEQ_LEN - 1:
        raise ValueError(f"At most {SEQ_LEN - 1} letters fit the model's context; "
                         f"you typed {len(letters)}.")
    return np.array([BOS] + [LETTERS.index(c) for c in letters], np.int64)


def decode(tokens: np.ndarray) -> list[str]:
    return [VOCAB[int(t)] for t in tokens]
