"""Opening user model files: every file of the hostile corpus gives its recorded
message, keeps the open model, and never runs a payload (issue #6, model files)."""

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import MechscopeError, ModelLoadError
from core.files.checkpoints import NeedsTrust
from core.session import Session
from tests.hostile.corpus import MARKER, OK, TRUST
from tests.hostile.messages import assert_readable


@pytest.fixture(scope="module")
def corpus(hostile_models):
    return hostile_models


@pytest.fixture(scope="module")
def opened():
    s = Session()
    s.open_model("digits_cnn")
    return s


def test_corpus_is_big_enough(corpus):
    assert len(corpus[1]) >= 80


def test_every_file_gives_its_recorded_message(corpus, opened, monkeypatch):
    # Even with the variable that turns torch's safe loading off, nothing may run.
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    folder, manifest = corpus
    for name, expect in manifest:
        before = opened.info.name
        path = folder / name
        if expect == OK:
            info = opened.open_checkpoint(str(path))
            assert info.title.endswith(name), name
            assert opened.evaluate().score > 0.95, name
            opened.open_model("digits_cnn")
            continue
        # A pipe or folder may be refused as an input before it is tried as a model.
        with pytest.raises(NeedsTrust if expect == TRUST else MechscopeError) as caught:
            opened.open_checkpoint(str(path))
        if expect == TRUST:
            assert caught.value.sha256 and caught.value.size == path.stat().st_size, name
        else:
            assert not isinstance(caught.value, NeedsTrust), name
            assert re.search(expect, str(caught.value)), f"{name}: {caught.value}"
            assert_readable(str(caught.value), name)
        assert opened.info.name == before, f"{name} replaced the open model"
        assert not (folder / MARKER).exists(), f"{name} ran its payload"


def test_trust_is_per_file_content(corpus, opened):
    folder, _ = corpus
    path = folder / "full_module.pt"
    with pytest.raises(NeedsTrust) as caught:
        opened.open_checkpoint(str(path))
    assert "torch.nn.modules.conv.Conv2d" in caught.value.unsafe_globals
    with pytest.raises(NeedsTrust):
        opened.open_checkpoint(str(path), trusted_sha256="0" * 64)
    info = opened.open_checkpoint(str(path), trusted_sha256=caught.value.sha256)
    assert "full_module.pt" in info.title and opened.evaluate().score > 0.95
    script = folder / "torchscript.pt"
    with pytest.raises(NeedsTrust) as caught:
        opened.open_checkpoint(str(script))
    opened.open_checkpoint(str(script), trusted_sha256=caught.value.sha256)
    assert opened.evaluate().score > 0.95


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_files_load_or_raise_our_error(corpus, opened, data):
    folder, _ = corpus
    seed = data.draw(st.sampled_from(["good_state_dict.pt", "good.safetensors",
                                      "good_legacy.pth"]))
    raw = bytearray((folder / seed).read_bytes())
    cut = data.draw(st.integers(1, len(raw)))
    raw = raw[:cut]
    for _ in range(data.draw(st.integers(0, 8))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    target = Path(folder) / f"mutant_{Path(seed).suffix.lstrip('.')}"
    target.write_bytes(bytes(raw))
    try:
        opened.open_checkpoint(str(target))
    except MechscopeError:
        pass
    assert not (folder / MARKER).exists()


def _hang(path_str, conn):
    import time

    time.sleep(30)


def _crash(path_str, conn):
    import os

    os._exit(139)  # dies without a word, as a segfaulting parser would


@pytest.mark.parametrize("child,message", [(_hang, "did not finish within 1 s"),
                                           (_crash, "crashed the parser")])
def test_a_parser_that_hangs_or_crashes_is_contained(corpus, monkeypatch, child, message):
    from core.files import probe

    folder, _ = corpus
    monkeypatch.setattr(probe, "_child", child)
    with pytest.raises(ModelLoadError, match=message):
        probe.probe(folder / "good_state_dict.pt", time_limit=1)


def test_legacy_pickle_globals_are_listed_without_running(corpus, opened):
    folder, _ = corpus
    with pytest.raises(NeedsTrust) as caught:
        opened.open_checkpoint(str(folder / "canary_os_system.pt"))
    assert any(name.endswith("system") for name in caught.value.unsafe_globals)
    assert not (folder / MARKER).exists()


def test_image_decoder_crash_is_contained(tmp_path, monkeypatch):
    from core.errors import InputError
    from core.files import probe

    monkeypatch.setattr(probe, "_image_child", _crash)
    path = tmp_path / "x.png"
    path.write_bytes(b"\\x89PNG")
    with pytest.raises(InputError, match="crashed the image decoder"):
        probe.probe_image(path, time_limit=2)
