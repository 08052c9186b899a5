"""Activation patching (denoising): activations of the clean prompt patched, one cell at
a time, into the run on the corrupted prompt, scored by
``logit[clean_answer] - logit[corrupt_answer]`` at the last position and normalised so
0 = as corrupted, 1 = as clean.

Two grids: ``"resid"`` — the residual stream entering each block and the final stream,
one position at a time (layer × position); ``"heads"`` — one head's output at every
position (layer × head). The GUI asks a few rows at a time to stream the grid in; the
clean and corrupted runs and the rows computed so far are kept per pair of prompts, so
each later request runs only its new rows. The forward passes are in
:mod:`core.adapters.lm_patching` (the suffix after the patched layer only, batched).
"""

from __future__ import annotations

import json
import sys
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import InputError
from core.jobs import CancelToken, check, report
from core.lm_values import PatchGrid
from core.paths import resource_path

KINDS = ("resid", "heads")
#: Pairs of prompts whose runs and grids are kept (a run of 64 tokens is ~22 MB:
#: its streams, head outputs and logits).
KEEP = 2


@dataclass(frozen=True)
class PatchExample:
    """A bundled clean/corrupted pair (``resources/data/patching_examples.json``)."""

    title: str
    clean: str
    corrupt: str
    clean_answer: str
    corrupt_answer: str


def examples() -> tuple[PatchExample, ...]:
    """The bundled pairs, each of one token length, each answered right by the model."""
    data = json.loads(resource_path("data", "patching_examples.json")
                      .read_text(encoding="utf-8"))
    return tuple(PatchExample(e["title"], e["clean"], e["corrupt"], e["clean_answer"],
                              e["corrupt_answer"]) for e in data["examples"])


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return (z / z.sum(-1, keepdims=True)).astype(np.float32)


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr = np.array(arr)
    arr.flags.writeable = False
    return arr


def position_labels(clean: np.ndarray, corrupt: np.ndarray,
                    names: Sequence[str]) -> tuple[str, ...]:
    """"3: ␣John" per position, numbered so repeated tokens stay apart; where the
    prompts differ, both pieces: "9: ␣John / ␣Mary"."""
    def piece(i: int) -> str:
        return names[i] if 0 <= i < len(names) else str(i)

    return tuple(f"{p}: {piece(a)}" if a == b else f"{p}: {piece(a)} / {piece(b)}"
                 for p, (a, b) in enumerate(zip(clean.tolist(), corrupt.tolist())))


class Patcher:
    """Patching on one adapter's model; caches per pair of prompts.

    Parameters
    ----------
    adapter : a torch adapter whose ``model`` is an ``embed → blocks → unembed``
        language model (see :class:`core.adapters.lm_patching.LmPatching`).
    names : readable token pieces, for the position labels.
    """

    def __init__(self, adapter, names: Sequence[str] = ()) -> None:
        self.adapter = adapter
        self.names = tuple(names)
        self._lm = None
        self._runs: OrderedDict[bytes, object] = OrderedDict()
        self._grids: OrderedDict[tuple, tuple[np.ndarray, set]] = OrderedDict()

    def _model(self):
        if self._lm is None:
            model = getattr(self.adapter, "model", None)
            lm = None
            torch = sys.modules.get("torch")  # an ONNX model never imports it
            if torch is not None and isinstance(model, torch.nn.Module):
                from core.adapters.lm_patching import LmPatching

                lm = LmPatching.of(model)
            if lm is None:
                raise InputError(
                    f"Activation patching needs a language model made of blocks on a "
                    f"residual stream (such as smollm2-135m); "
                    f"{getattr(self.adapter, 'name', 'this model')} is not one.")
            self._lm = lm
        return self._lm

    def _run(self, tokens: np.ndarray):
        key = tokens.tobytes()
        if key in self._runs:
            self._runs.move_to_end(key)
        else:
            self._runs[key] = self._model().run(tokens)
            while len(self._runs) > 2 * KEEP:
                self._runs.popitem(last=False)
        return self._runs[key]

    def _pair(self, clean, corrupt, token: CancelToken | None):
        clean = np.asarray(clean, np.int64).reshape(-1)
        corrupt = np.asarray(corrupt, np.int64).reshape(-1)
        if len(clean) != len(corrupt):
            raise InputError(
                f"The clean prompt is {len(clean)} tokens long and the corrupted one "
                f"{len(corrupt)}; patching needs prompts of the same length, position "
                f"for position. Change a word for one of the same token count.")
        lm = self._model()
        check(token)
        runs = self._run(clean), self._run(corrupt)
        return lm, clean, corrupt, runs

    def _rows(self, lm, kind: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if kind == "resid":
            labels = tuple(str(i) for i in range(lm.n_layers)) + ("final",)
            return tuple(lm.stream_sites), labels
        return tuple(lm.heads_sites), tuple(str(i) for i in range(lm.n_layers))

    def grid(self, clean: np.ndarray, corrupt: np.ndarray, clean_answer: int,
             corrupt_answer: int, kind: str = "resid", rows: Sequence[int] | None = None,
             token: CancelToken | None = None) -> PatchGrid:
        """The grid with ``rows`` (default: all) computed, and every row computed
        before for the same prompts and answers (``done`` lists them)."""
        if kind not in KINDS:
            raise InputError(f"Patching kind must be one of {', '.join(KINDS)}; "
                             f"got {kind!r}.")
        lm, clean, corrupt, (c_run, x_run) = self._pair(clean, corrupt, token)
        vocab = c_run.logits.shape[-1]
        for answer in (clean_answer, corrupt_answer):
            if not 0 <= answer < vocab:
                raise InputError(f"An answer must be a token id in 0..{vocab - 1}; "
                                 f"got {answer}.")
        if clean_answer == corrupt_answer:
            raise InputError("The clean and the corrupted answer are the same token: "
                             "their logit difference is always 0. Pick two answers.")
        clean_diff = float(c_run.logits[-1, clean_answer] - c_run.logits[-1, corrupt_answer])
        corrupt_diff = float(x_run.logits[-1, clean_answer] - x_run.logits[-1, corrupt_answer])
        if abs(clean_diff - corrupt_diff) < 1e-6:
            raise InputError("The clean and the corrupted prompt give the same logit "
                             "difference between the answers: there is nothing to "
                             "restore. Change the corrupted prompt or the answers.")
        sites, labels = self._rows(lm, kind)
        T = len(clean)
        columns = position_labels(clean, corrupt, self.names) if kind == "resid" else \
            tuple(f"H{h}" for h in range(c_run.heads.shape[1]))
        key = (clean.tobytes(), corrupt.tobytes(), clean_answer, corrupt_answer, kind)
        if key not in self._grids:
            self._grids[key] = (np.full((len(sites), len(columns)), np.nan), set())
            while len(self._grids) > 2 * KEEP:
                self._grids.popitem(last=False)
        self._grids.move_to_end(key)
        raw, done = self._grids[key]
        wanted = range(len(sites)) if rows is None else rows
        todo = [int(r) for r in dict.fromkeys(wanted) if int(r) not in done]
        for r in todo:
            if not 0 <= r < len(sites):
                raise InputError(f"Row {r} is not in the grid (0..{len(sites) - 1}).")
        answers = (clean_answer, corrupt_answer)
        def stop() -> None:
            check(token)

        for i, r in enumerate(todo):
            report(token, i / max(len(todo), 1),
                   f"patching {'the residual stream' if kind == 'resid' else 'heads'}: "
                   f"row {labels[r]} ({i + 1} of {len(todo)})")
            if kind == "resid":
                # Equal streams: the patch is the corrupted run itself (no forward).
                same = np.all(c_run.streams[r] == x_run.streams[r], axis=-1)
                row = np.full(T, corrupt_diff)
                run = np.flatnonzero(~same)
                row[run] = lm.resid_row(r, c_run, x_run, run, answers, stop)
            else:
                row = lm.heads_row(r, c_run, x_run, np.arange(len(columns)), answers, stop)
            raw[r] = row
            done.add(r)
        report(token, 1.0, "patched")
        score = (raw - corrupt_diff) / (clean_diff - corrupt_diff)
        return PatchGrid(kind, sites, labels, columns, tuple(sorted(done)), _frozen(raw),
                         _frozen(score), clean_diff, corrupt_diff, int(clean_answer),
                         int(corrupt_answer), _frozen(clean), _frozen(corrupt))

    def cell(self, clean: np.ndarray, corrupt: np.ndarray, kind: str, row: int,
             column: int, token: CancelToken | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """Next-token probabilities (T, V) of the corrupted run with one cell patched,
        and of the corrupted run unpatched."""
        if kind not in KINDS:
            raise InputError(f"Patching kind must be one of {', '.join(KINDS)}; "
                             f"got {kind!r}.")
        lm, clean, corrupt, (c_run, x_run) = self._pair(clean, corrupt, token)
        n_rows = lm.n_layers + (1 if kind == "resid" else 0)
        n_cols = len(clean) if kind == "resid" else c_run.heads.shape[1]
        if not (0 <= row < n_rows and 0 <= column < n_cols):
            raise InputError(f"Cell ({row}, {column}) is not in the {kind} grid "
                             f"({n_rows} × {n_cols}).")
        logits = lm.cell_logits(kind, row, column, c_run, x_run, lambda: check(token))
        return _softmax(logits), _softmax(x_run.logits)
