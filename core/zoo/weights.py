"""Write a trained zoo model's weights where the app finds them."""

from __future__ import annotations

from pathlib import Path

from core.paths import resources_dir


def save_weights(model, filename: str, trained_by: str, seed: int) -> Path:
    """``model``'s state dict as ``resources/models/<filename>`` (safetensors), with the
    training module and seed in its metadata so every file says how to reproduce it."""
    from safetensors.torch import save_file

    out = resources_dir() / "models" / filename
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out),
              metadata={"trained_by": trained_by, "seed": str(seed)})
    return out
