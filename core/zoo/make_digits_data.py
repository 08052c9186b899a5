"""Write ``resources/data/digits.npz`` from scikit-learn's copy of the UCI digits.

Run once by a developer (``python -m core.zoo.make_digits_data``); the app and the
training script read only the npz. The held-out split is stratified and seeded so the
app evaluates on exactly the examples training never saw.
"""

from __future__ import annotations

import numpy as np

from core.paths import resources_dir

SEED = 20241211
EVAL_FRACTION = 0.2


def main() -> None:
    from sklearn.datasets import load_digits  # dev-only dependency

    digits = load_digits()
    images = digits.images.astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    rng = np.random.default_rng(SEED)
    eval_index = []
    for cls in range(10):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        eval_index.extend(idx[: round(len(idx) * EVAL_FRACTION)])
    out = resources_dir() / "data" / "digits.npz"
    np.savez_compressed(out, images=images, labels=labels,
                        eval_index=np.sort(np.array(eval_index, dtype=np.int64)))
    print(f"wrote {out}: {len(images)} images, {len(eval_index)} held out")


if __name__ == "__main__":
    main()
