"""Activation patching on SmolLM2-135M (issue #14): the whole residual grid (and the
heads grid) against what a TransformerLens or nnsight user writes — one hooked full
forward per cell — and against one plain forward, for the name-mover (IOI) pair.

    python -m bench.bench_lm_patching [--repeats 3] [--sample 0] [--threads N]

The grid runs in a fresh :class:`core.analysis.patching.Patcher` each time (no cached
rows; the two unpatched runs included). The loop of hooked forwards is timed in full
(``--sample K``: K cells of it, scaled to the whole grid — say so when quoting).
Also printed: the cost model, the forwards the suffix shortcut should cost
(sum over rows of (L - l) / L × the positions it runs). Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from core.analysis.patching import Patcher
from core.session import Session
from core.zoo import smollm

CLEAN = "When Mary and John went to the store, John gave a drink to"
CORRUPT = "When Mary and John went to the store, Mary gave a drink to"


def _median(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _hooked_loop(model, corrupt, cells, sites, sources, answers) -> None:
    """One full forward per cell with that cell's clean value written by a hook."""
    x = torch.from_numpy(corrupt[None].copy())
    a, b = answers
    for row, col in cells:
        src = sources[row]

        def put(_m, _i, out, src=src, col=col):
            out = out.clone()
            out[0, col] = src[col]
            return out

        handle = model.get_submodule(sites[row]).register_forward_hook(put)
        try:
            with torch.inference_mode():
                logits = model(x)[0, -1]
            float(logits[a] - logits[b])
        finally:
            handle.remove()


def _loop_seconds(cells, run, sample: int) -> tuple[float, str]:
    if sample and sample < len(cells):
        rng = np.random.default_rng(0)
        chosen = [cells[i] for i in rng.choice(len(cells), sample, replace=False)]
        start = time.perf_counter()
        run(chosen)
        return (time.perf_counter() - start) * len(cells) / sample, f"{sample} cells scaled"
    start = time.perf_counter()
    run(cells)
    return time.perf_counter() - start, "measured in full"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sample", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    session = Session()
    session.open_model("smollm2-135m")
    adapter, model = session.adapter, session.adapter.model
    clean, corrupt = smollm.encode(CLEAN), smollm.encode(CORRUPT)
    answers = int(smollm.encode(" Mary")[0]), int(smollm.encode(" John")[0])
    n_tokens = len(clean)
    x = torch.from_numpy(corrupt[None].copy())

    def forward():
        with torch.inference_mode():
            model(x)

    one = _median(forward, max(args.repeats, 5))
    print(f"SmolLM2-135M, IOI pair of {n_tokens} tokens, {torch.get_num_threads()} threads")
    print(f"one plain forward: {one * 1e3:.1f} ms")
    for kind in ("resid", "heads"):
        grid_s = _median(lambda kind=kind: Patcher(adapter, smollm.vocab()).grid(
            clean, corrupt, *answers, kind), args.repeats)
        patcher = Patcher(adapter)
        grid = patcher.grid(clean, corrupt, *answers, kind)
        c_run, x_run = patcher._run(clean), patcher._run(corrupt)
        n_layers = len(grid.rows) - (1 if kind == "resid" else 0)
        if kind == "resid":
            sources = [torch.from_numpy(s) for s in c_run.streams]
            runs = [int((~np.all(c_run.streams[r] == x_run.streams[r], -1)).sum())
                    for r in range(len(grid.rows))]
        else:
            sources = [torch.from_numpy(h) for h in c_run.heads]
            runs = [len(grid.column_labels)] * len(grid.rows)
        model_fw = sum(max(n_layers - r, 0) / n_layers * k for r, k in enumerate(runs))
        cells = [(r, c) for r in range(len(grid.rows)) for c in range(len(grid.column_labels))]
        loop_s, how = _loop_seconds(
            cells, lambda chosen, rows=grid.rows, sources=sources: _hooked_loop(
                model, corrupt, chosen, rows, sources, answers), args.sample)
        name = "residual" if kind == "resid" else "heads"
        print(f"\n{name} grid: {len(grid.rows)} x {len(grid.column_labels)} = {len(cells)} "
              f"cells")
        print(f"  shortcut grid            {grid_s:8.2f} s  = {grid_s / one:7.1f} forwards")
        print(f"  hooked forward per cell  {loop_s:8.2f} s  = {loop_s / one:7.1f} forwards "
              f"({how})")
        print(f"  ratio loop / grid        {loop_s / grid_s:8.1f} x")
        print(f"  cost model: {model_fw:.1f} forwards of suffix "
              f"({sum(runs)} of {len(cells)} cells run; half of the cells x layers would "
              f"be {len(cells) / 2:.0f})")


if __name__ == "__main__":
    main()
