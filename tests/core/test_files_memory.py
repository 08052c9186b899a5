"""Memory before the size check (issue #10): files that are small on disk but would
take gigabytes are refused from what they declare, and the probe process that reads
them stays small. The child reports its peak memory; it is logged and checked here."""

import logging
import re
from collections import OrderedDict

import pytest
import torch  # imported before the probe forks, so the child shares it, as in the app

from core.errors import ModelLoadError
from core.files import probe as probe_module
from core.files import torch_reader
from core.files.probe import probe
from tests.hostile import tricks
from tests.hostile.corpus import _digits_state, _safetensors_bytes
from tests.hostile.messages import assert_readable

#: The child may grow by this much above the process it was forked from.
MAX_GROWTH_MB = 200

CASES = {
    "expanded.pt": (lambda: tricks.expanded(_digits_state()), "an expanded tensor"),
    "shared_storage.pt": (tricks.shared_storage, "repeat shared storage"),
    "deflate_bomb.pt": (tricks.deflate_bomb, "would unpack to 3 GB"),
    "bad_crc.pt": (lambda: tricks.bad_crc(_good()), "a checksum does not match"),
    "huge_count.safetensors": (lambda: _safetensors_bytes(
        b'{"w":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,4000000000000]}}'),
        "more than 500,000,000 numbers"),
}


def _good() -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(_digits_state(), buf)
    return buf.getvalue()


def _child_growth_mb(records, name: str) -> float:
    for record in records:
        text = record.getMessage()
        found = re.search(rf"probe child for {re.escape(name)}: peak memory (\d+) MB "
                          r"\(started at (\d+) MB\)", text)
        if found:
            return float(found[1]) - float(found[2])
    raise AssertionError(f"no peak memory logged for {name}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_from_metadata_with_a_small_child(tmp_path, caplog, name):
    make, reason = CASES[name]
    path = tmp_path / name
    path.write_bytes(make())
    with caplog.at_level(logging.INFO, logger="core.files.probe"):
        with pytest.raises(ModelLoadError, match=re.escape(reason)) as caught:
            probe(path)
    assert_readable(str(caught.value), name)
    growth = _child_growth_mb(caplog.records, name)
    print(f"{name}: {path.stat().st_size / 1024:,.0f} KB on disk, probe child grew "
          f"{growth:.0f} MB")
    assert growth < MAX_GROWTH_MB, f"{name}: the probe child grew by {growth:.0f} MB"


def test_the_answer_is_capped_in_the_child(tmp_path, monkeypatch):
    path = tmp_path / "good.pt"
    path.write_bytes(_good())
    monkeypatch.setattr(torch_reader, "MAX_ANSWER_BYTES", 1000)  # the fork inherits it
    with pytest.raises(ModelLoadError, match="Mechscope opens models up to 1000 bytes"):
        probe(path)


def test_the_answer_is_capped_in_the_app(tmp_path, monkeypatch):
    # Even a child that ignored its own limit could not make the app set memory aside.
    path = tmp_path / "good.pt"
    path.write_bytes(_good())
    monkeypatch.setattr(probe_module, "MAX_ANSWER_BYTES", 1000)
    with pytest.raises(ModelLoadError, match="larger than 1000 bytes; it was not opened"):
        probe(path)


def test_half_precision_is_widened_after_counting(tmp_path):
    state = _digits_state()
    for dtype in (torch.bfloat16, torch.float16):
        for fmt in ("pt", "safetensors"):
            path = tmp_path / f"half.{fmt}"
            path.write_bytes(tricks.half_precision(state, dtype, fmt))
            result = probe(path)
            assert {str(a.dtype) for a in result.state.values()} == {"float32"}, (dtype, fmt)
            for key, value in state.items():
                want = value.to(dtype).float().numpy()
                assert (result.state[key] == want).all(), (dtype, fmt, key)


def test_a_small_expanded_buffer_is_still_read(tmp_path):
    # Models do register small expanded buffers (position ids); only big ones are refused.
    path = tmp_path / "small.pt"
    torch.save(OrderedDict(ids=torch.arange(8).expand(4, 8)), path)
    result = probe(path)
    assert result.state["ids"].shape == (4, 8) and result.state["ids"][3, 7] == 7
