"""Attention capture and the head-importance sweep on the shipped induction transformer
over its 512-sequence eval set, in one run.

    python -m bench.bench_attention [--repeats 100]

  capture of every attention pattern vs a plain forward           (ratio)
  batched importance sweep (all 8 heads) vs a loop of 8 hooked full forwards (ratio)
  Session.head_importance vs eight Session.evaluate calls, one head each (ratio): what
  the window's button does against what a user could do by hand (issue #12)
Not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from bench.common import paired_medians, plain_vs_capture
from core.ablation import Ablation
from core.runtime import tune_allocator
from core.session import Session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    tuned = tune_allocator()
    session = Session()
    session.open_model("induction_transformer")
    adapter, dataset = session.adapter, session.dataset
    tokens = np.array(dataset.inputs)
    patterns = [i.name for i in adapter.layers() if i.kind == "Pattern"]
    heads = [i.name for i in adapter.layers() if i.kind == "HeadOutputs"]
    plain_s, capture_s = plain_vs_capture(adapter, tokens, patterns, args.repeats)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{len(dataset)} sequences of {adapter.input_shape[0]} tokens, allocator tuned: {tuned}")
    print(f"plain forward                           {plain_s * 1e3:8.2f} ms")
    print(f"forward capturing {len(patterns)} attention patterns  {capture_s * 1e3:8.2f} ms   "
          f"ratio {capture_s / plain_s:5.2f}")

    evaluator = session._evaluator
    session.head_importance()  # warm the baseline and the resume caches

    def batched():
        for site in heads:
            evaluator.sweep(site, range(4))

    def loop():
        for site in heads:
            for h in range(4):
                out = adapter.run(tokens, ablations=(Ablation(site, (h,)),)).outputs
                (out.argmax(-1) == dataset.labels).mean()

    loop_s, batched_s = paired_medians(loop, batched, max(10, args.repeats // 5))
    print(f"loop of 8 hooked forwards               {loop_s * 1e3:8.2f} ms")
    print(f"batched sweep of 8 heads                {batched_s * 1e3:8.2f} ms   "
          f"ratio {batched_s / loop_s:5.2f} of the loop")

    def by_hand():
        for site in heads:
            for h in range(4):
                session.evaluate((Ablation(site, (h,)),))

    hand_s, button_s = paired_medians(by_hand, session.head_importance,
                                      max(10, args.repeats // 5))
    print(f"8 x Session.evaluate, one head each     {hand_s * 1e3:8.2f} ms")
    print(f"Session.head_importance                 {button_s * 1e3:8.2f} ms   "
          f"ratio {button_s / hand_s:5.2f} of evaluating by hand")


if __name__ == "__main__":
    main()
