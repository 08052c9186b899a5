"""Activation patching on SmolLM2-135M (issue #14): the suffix shortcut against a full
hooked forward pass, the identities the issue names, and the bundled examples.

Tolerance: a logit difference through the shortcut (a batch of patched positions, the
norm and one dot product at the last position) equals the full hooked forward's within
2e-3 — float32 over 30 blocks, summed in another order (measured: ~1e-4)."""

import numpy as np
import pytest

from core.analysis import patching
from core.errors import InputError
from core.session import Session
from core.zoo import smollm

pytestmark = pytest.mark.skipif(not smollm.available(),
                                reason="the smollm extra is not installed")
TOL = 2e-3
CLEAN, CORRUPT = "The capital of France is", "The capital of Italy is"


@pytest.fixture(scope="module")
def lm():
    s = Session()
    s.open_model("smollm2-135m")
    return s


@pytest.fixture(scope="module")
def pair():
    c, x = smollm.encode(CLEAN), smollm.encode(CORRUPT)
    return c, x, int(smollm.encode(" Paris")[0]), int(smollm.encode(" Rome")[0])


def _hooked(model, tokens, site, replace):
    """A plain full forward of the whole model with ``site``'s output rewritten by
    ``replace(out)``: the slow path the shortcut must equal."""
    import torch

    module = model.get_submodule(site)
    handle = module.register_forward_hook(lambda _m, _i, out: replace(out.clone()))
    try:
        with torch.inference_mode():
            return model(torch.from_numpy(tokens[None].copy()))[0].numpy()
    finally:
        handle.remove()


def _diff(logits, a, b):
    return float(logits[-1, a] - logits[-1, b])


def test_resid_cells_equal_a_full_hooked_forward(lm, pair):
    import torch

    c, x, a, b = pair
    grid = lm.activation_patching(c, x, a, b, "resid")
    assert grid.done == tuple(range(31)) and not np.isnan(grid.raw).any()
    clean = lm.adapter.run(c[None], capture=grid.rows).activations
    model = lm.adapter.model
    for row, pos in [(0, 3), (0, 0), (7, 3), (15, 4), (29, 2), (29, 4), (30, 4), (30, 1)]:
        site = grid.rows[row]
        src = torch.from_numpy(clean[site][0, pos])

        def put(out, src=src, pos=pos):
            out[0, pos] = src
            return out

        want = _diff(_hooked(model, x, site, put), a, b)
        assert grid.raw[row, pos] == pytest.approx(want, abs=TOL), (site, pos)
    # Unchanged tokens at the embedding patch nothing; the final stream matters only
    # at the last position; the patch of the differing token at block 0 restores all.
    assert np.allclose(grid.score[0, [0, 1, 2, 4]], 0, atol=1e-4)
    assert np.allclose(grid.score[30, :-1], 0, atol=1e-4) and grid.score[30, -1] == \
        pytest.approx(1, abs=1e-4)
    assert grid.score[0, 3] == pytest.approx(1, abs=1e-3)


def test_heads_cells_equal_a_full_hooked_forward(lm, pair):
    import torch

    c, x, a, b = pair
    rows = [0, 14, 29]
    grid = lm.activation_patching(c, x, a, b, "heads", rows=rows)
    assert grid.done == tuple(rows) and grid.column_labels[8] == "H8"
    assert np.isnan(grid.raw[1]).all() and not np.isnan(grid.raw[rows]).any()
    clean = lm.adapter.run(c[None], capture=grid.rows).activations
    for row, head in [(0, 0), (14, 5), (29, 8), (29, 3)]:
        site = grid.rows[row]
        src = torch.from_numpy(clean[site][0, head])

        def put(out, src=src, head=head):
            out[0, head] = src
            return out

        want = _diff(_hooked(lm.adapter.model, x, site, put), a, b)
        assert grid.raw[row, head] == pytest.approx(want, abs=TOL), (site, head)
    # Rows asked for later join those computed before.
    more = lm.activation_patching(c, x, a, b, "heads", rows=[1])
    assert more.done == (0, 1, 14, 29)
    assert np.array_equal(more.raw[rows], grid.raw[rows])


def test_patching_the_clean_run_into_itself_changes_nothing(lm, pair):
    c, _, a, b = pair
    p = lm._patcher()
    run = p._run(c)
    lm_ = p._model()
    base = _diff(run.logits, a, b)
    for layer in (0, 12, 29, 30):
        got = lm_.resid_row(layer, run, run, np.arange(len(c)), (a, b), lambda: None)
        assert np.allclose(got, base, atol=TOL)
    got = lm_.heads_row(20, run, run, np.arange(9), (a, b), lambda: None)
    assert np.allclose(got, base, atol=TOL)
    for kind, row, col in [("resid", 5, 2), ("heads", 10, 4)]:
        probs, baseline = p.cell(c, c, kind, row, col)
        assert np.abs(probs - baseline).max() < 1e-4


def test_the_whole_first_stream_patched_gives_the_clean_output(lm, pair):
    import torch

    c, x, _, _ = pair
    p = lm._patcher()
    clean, corrupt = p._run(c), p._run(x)
    site = p._model().stream_sites[0]
    src = torch.from_numpy(clean.streams[0])
    whole = _hooked(lm.adapter.model, x, site, lambda out: out.copy_(src[None]))
    assert np.abs(whole - clean.logits).max() < TOL
    assert np.abs(whole - corrupt.logits).max() > 1  # the patch did something


def test_a_patched_cell_moves_the_prediction(lm, pair):
    c, x, a, b = pair
    pred = lm.patch_cell(c, x, "resid", 0, 3)
    assert pred.probabilities.shape == (len(c), smollm.VOCAB_SIZE)
    assert pred.predicted[-1] == a and int(pred.baseline_probabilities[-1].argmax()) == b


def test_bad_requests_are_sentences(lm, pair, session):
    c, x, a, b = pair
    longer = smollm.encode("The capital of the United Kingdom is")
    with pytest.raises(InputError, match=f"{len(c)} tokens.*{len(longer)}"):
        lm.activation_patching(c, longer, a, b)
    with pytest.raises(InputError, match="same token"):
        lm.activation_patching(c, x, a, a)
    with pytest.raises(InputError, match="kind"):
        lm.activation_patching(c, x, a, b, "neurons")
    with pytest.raises(InputError, match="not in the grid"):
        lm.activation_patching(c, x, a, b, "resid", rows=[31])
    with pytest.raises(InputError, match="language model"):
        patching.Patcher(session.adapter).grid(c, x, 1, 2)


def test_position_labels_keep_repeats_apart():
    names = ("a", "␣John", "␣Mary")
    labels = patching.position_labels(np.array([1, 0, 1]), np.array([1, 0, 2]), names)
    assert labels == ("0: ␣John", "1: a", "2: ␣John / ␣Mary")


def test_bundled_examples_have_one_length_and_the_model_answers_them(lm):
    examples = patching.examples()
    assert len(examples) >= 3
    for e in examples:
        c, x = smollm.encode(e.clean), smollm.encode(e.corrupt)
        assert len(c) == len(x), e.title
        a, b = smollm.encode(e.clean_answer), smollm.encode(e.corrupt_answer)
        assert len(a) == len(b) == 1
        logits = lm.adapter.run(np.stack([c, x])).outputs[:, -1]
        assert logits[0].argmax() == a[0] and logits[1].argmax() == b[0], e.title
