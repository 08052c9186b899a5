"""All 270 heads of SmolLM2-135M switched off one at a time (issue #14): the batched
walk of :mod:`core.adapters.lm_heads` against one forward over the task set and against
the loop of hooked forwards a TransformerLens or nnsight user writes (one per head).

    python -m bench.bench_lm_heads [--task induction] [--mode zero] [--loop 3]

The loop is timed on ``--loop`` heads and extrapolated to 270 (said in the output):
the full loop is 270 forwards. Caches are warm on both sides (baseline, means), as in
the window after the first run. Not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from core.ablation import Ablation
from core.analysis import lm_head_importance
from core.analysis.evaluate import _scores
from core.session import Session


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", default="induction")
    parser.add_argument("--mode", default="zero", choices=("zero", "mean"))
    parser.add_argument("--loop", type=int, default=3, help="heads of the loop timed")
    args = parser.parse_args(argv)
    session = Session()
    session.open_model("smollm2-135m")
    if args.task != "induction":
        session.use_task(args.task)
    adapter, ds, ev = session.adapter, session.dataset, session._evaluator
    inputs = np.array(ds.inputs)
    ev.evaluate()                                   # baseline cached
    sites = [f"block{i}.attn.heads" for i in range(30)]
    means = {}
    if args.mode == "mean":
        ev.site_outputs(sites)
        means = ev.means(sites)
    adapter.run(inputs)                             # warm-up
    forward = min(_seconds(lambda: adapter.run(inputs)) for _ in range(2))
    picks = [(l, h) for l, h in ((0, 0), (15, 4), (29, 8), (7, 2), (22, 6))][:args.loop]

    def hooked(l, h):
        abl = (Ablation(f"block{l}.attn.heads", (h,), args.mode),)
        _scores(adapter.run(inputs, ablations=abl, means=means).outputs, ds)

    print(f"task {args.task} ({ds.inputs.shape[0]}x{ds.inputs.shape[1]} tokens, "
          f"{int((ds.labels >= 0).sum())} scored), {args.mode} ablation", flush=True)
    print(f"one forward over the task set     {forward:8.2f} s", flush=True)
    fast = _seconds(lambda: lm_head_importance.head_importance(ev, args.mode))
    print(f"batched walk, all 270 heads       {fast:8.2f} s = {fast / forward:6.1f} forwards",
          flush=True)
    per_head = np.mean([_seconds(lambda: hooked(l, h)) for l, h in picks])
    loop = 270 * per_head
    # The machine's speed drifts (other load): a forward again, after, and their mean.
    after = min(_seconds(lambda: adapter.run(inputs)) for _ in range(2))
    forward = (forward + after) / 2
    print(f"one forward again, after          {after:8.2f} s; ratios use the mean "
          f"{forward:.2f} s: walk {fast / forward:.1f} forwards", flush=True)
    print(f"hooked forward per head (mean of {len(picks)}) {per_head:8.2f} s  "
          f"-> 270-head loop extrapolated {loop:8.1f} s = {loop / forward:6.1f} forwards")
    print(f"the walk is {loop / fast:.1f}x faster than the loop")


if __name__ == "__main__":
    main()
