"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch


def paired_medians(fn_a, fn_b, repeats: int) -> tuple[float, float]:
    """Median seconds of two functions timed alternately, so drift in the machine's
    speed (other load, frequency) hits both sides alike."""
    fn_a(), fn_b()  # warm-up (allocator, caches)
    a, b = [], []
    for _ in range(repeats):
        for fn, times in ((fn_a, a), (fn_b, b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def plain_vs_capture(adapter, inputs: np.ndarray, sites, repeats: int) -> tuple[float, float]:
    """(plain PyTorch forward, adapter forward capturing ``sites``), median seconds."""
    x = torch.from_numpy(inputs)

    def plain():
        with torch.inference_mode():
            adapter.model(x)

    def capture():
        adapter.run(inputs, capture=sites)

    return paired_medians(plain, capture, repeats)
