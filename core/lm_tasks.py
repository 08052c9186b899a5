"""The evaluation tasks of the language model (issue #14): what "accuracy" means when
heads are switched off.

- ``induction``: repeated random word pieces, scored on the repeat
  (:func:`core.datasets.load_smollm`);
- ``names``: name-mover prompts ("When Mary and John went to the store, John gave a
  drink to" → " Mary"), scored only at the answer;
- ``text``: a few kB of plain English shipped in ``resources/data/smollm_text.txt``,
  next token scored at every position (accuracy and loss).

Each set stays small: the evaluator keeps the logits of every row, (N, T, 49152)
float32, so a task is held to ~150 MB of them.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from core.datasets import Dataset, load_smollm
from core.errors import InputError
from core.kinds import ModelKind
from core.lm_values import LmTask
from core.paths import resource_path

MODEL = "smollm2-135m"

#: ``{A}`` and ``{B}`` are introduced, ``{S}`` (one of them) gives; the other is the answer.
TEMPLATES = (
    "When{A} and{B} went to the store,{S} gave a drink to",
    "When{A} and{B} went to the park,{S} gave a ball to",
    "After{A} and{B} had lunch,{S} passed the salt to",
    "While{A} and{B} were at the party,{S} sent a letter to",
    "Then,{A} and{B} went to the beach.{S} gave a towel to",
)
#: Names that are one token each with their leading space (checked when built).
NAMES = (" Mary", " John", " Tom", " James", " Sarah", " Anna", " David", " Paul",
         " Emma", " Kate", " Mark", " Lisa", " Peter", " Alice", " Jack", " Laura")
PROMPTS_PER_TEMPLATE, NAMES_SEED = 8, 14
#: Text rows: at most this many tokens each, and at most this many rows (memory).
TEXT_TOKENS, TEXT_ROWS = 64, 12
TEXT_GROUPS = ("positions 1–16", "17–32", "33–48", "49–63")

_TASKS = (
    LmTask("induction", "Induction (repeated random tokens)",
           "accuracy of the next token in the second copy of 16 random word pieces",
           dataset="repeated random tokens (eval)"),
    LmTask("names", "Names (who gets the drink?)",
           "accuracy of the indirect object's name in 40 prompts such as “When Mary "
           "and John went to the store, John gave a drink to” → “ Mary”",
           dataset="names (IOI prompts)"),
    LmTask("text", "Plain text",
           "next-token accuracy and loss at every position of ~3.5 kB of plain English",
           dataset="plain text"),
)


def tasks(model_name: str) -> tuple[LmTask, ...]:
    """The tasks of ``model_name``; none for a model that is not a language model."""
    return _TASKS if model_name == MODEL else ()


def dataset(model_name: str, task: str) -> Dataset:
    """Task ``task``'s evaluation set (:class:`InputError` for an unknown task, or a
    model without tasks)."""
    names = [t.name for t in tasks(model_name)]
    if not names:
        raise InputError(f"{model_name} is not a language model with evaluation tasks; "
                         f"they exist for {MODEL}.")
    if task not in names:
        raise InputError(f"{model_name} has no task {task!r}; choose one of "
                         f"{', '.join(names)}.")
    return _LOADERS[task]()


def _frozen(*arrays: np.ndarray) -> None:
    for arr in arrays:
        arr.setflags(write=False)


def _padded(rows: list[np.ndarray], pad: int) -> np.ndarray:
    """Right-padded (N, T): a causal model's earlier positions never see the padding."""
    out = np.full((len(rows), max(len(r) for r in rows)), pad, np.int64)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


def name_prompts() -> list[tuple[str, str, int]]:
    """(prompt, answer name, group) per prompt; group 0: the answer is named first
    ("A and B …, B gave … to" → A), 1: named second ("A and B …, A gave … to" → B)."""
    rng = np.random.default_rng(NAMES_SEED)
    out = []
    for template in TEMPLATES:
        for k in range(PROMPTS_PER_TEMPLATE):
            a, b = (NAMES[i] for i in rng.choice(len(NAMES), 2, replace=False))
            giver, answer = (b, a) if k % 2 == 0 else (a, b)
            out.append((template.format(A=a, B=b, S=giver), answer, k % 2))
    return out


@lru_cache(maxsize=1)
def load_names() -> Dataset:
    from core.zoo import smollm

    rows, answers, kinds, texts = [], [], [], []
    for prompt, answer, group in name_prompts():
        ids = smollm.encode(prompt)  # no BOS: with one the model gets 85 %, not 98 %
        answer_ids = smollm.encode("x" + answer)[1:]
        if len(answer_ids) != 1:
            raise ValueError(f"{answer!r} is not one token")
        rows.append(ids)
        answers.append(int(answer_ids[0]))
        kinds.append(group)
        texts.append(prompt)
    tokens = _padded(rows, smollm.BOS)
    labels = np.full(tokens.shape, -1, np.int64)
    groups = np.full(tokens.shape, -1, np.int64)
    for i, row in enumerate(rows):
        labels[i, len(row) - 1] = answers[i]
        groups[i, len(row) - 1] = kinds[i]
    _frozen(tokens, labels, groups)
    return Dataset("names (IOI prompts)", tokens, labels, smollm.vocab(), None, groups,
                   ("named first", "named second"), "where the answer is named",
                   ModelKind.TOKENS, smollm.BOS, tuple(texts))


def text_path():
    return resource_path("data", "smollm_text.txt")


@lru_cache(maxsize=1)
def load_text() -> Dataset:
    """The shipped text cut into rows of :data:`TEXT_TOKENS` tokens; each position
    predicts the next token of its row."""
    from core.zoo import smollm

    text = text_path().read_text(encoding="utf-8")
    # The whole text at once (encode() refuses prompts over 64 tokens).
    ids = np.array(smollm._tokenizer().encode(text, add_special_tokens=False).ids, np.int64)
    rows = [ids[i:i + TEXT_TOKENS] for i in range(0, len(ids), TEXT_TOKENS)]
    rows = [r for r in rows if len(r) > 1][:TEXT_ROWS]
    tokens = _padded(rows, smollm.BOS)
    labels = np.full(tokens.shape, -1, np.int64)
    groups = np.full(tokens.shape, -1, np.int64)
    bin_size = TEXT_TOKENS // len(TEXT_GROUPS)
    for i, row in enumerate(rows):
        n = len(row) - 1
        labels[i, :n] = row[1:]
        groups[i, :n] = np.minimum(np.arange(n) // bin_size, len(TEXT_GROUPS) - 1)
    _frozen(tokens, labels, groups)
    texts = tuple(smollm.decode(r) for r in rows)
    return Dataset("plain text", tokens, labels, smollm.vocab(), None, groups, TEXT_GROUPS,
                   "position in the row", ModelKind.TOKENS, smollm.BOS, texts)


_LOADERS = {"induction": load_smollm, "names": load_names, "text": load_text}
