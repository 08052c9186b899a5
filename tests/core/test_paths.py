"""Every shipped resource is found through the one helper, from source and frozen."""

import sys
from pathlib import Path

import pytest

from core import paths
from core.zoo import ZOO

SHIPPED = [("data", "digits.npz"), ("data", "DIGITS_LICENSE.txt"), ("data", "sentences.txt"),
           ("icons", "mechscope.png"), ("icons", "mechscope.svg"),
           ("mechscope.desktop",), ("mechscope-mime.xml",)] + [("models", e.weights) for e in ZOO.values()
                                      if not Path(e.weights).is_absolute()]


@pytest.mark.parametrize("parts", SHIPPED, ids="/".join)
def test_every_shipped_resource_resolves_from_source(parts):
    path = paths.resource_path(*parts)
    assert path.is_file() and path.stat().st_size > 0


def test_missing_resource_is_named():
    with pytest.raises(FileNotFoundError, match="nope.bin"):
        paths.resource_path("models", "nope.bin")


def test_frozen_bundle_uses_meipass(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert paths.resources_dir() == Path(tmp_path) / "resources"


def test_build_spec_ships_every_resource():
    spec = (Path(__file__).resolve().parents[2] / "build.spec").read_text()
    for parts in SHIPPED:
        assert parts[-1] in spec, f"build.spec does not ship {'/'.join(parts)}"
