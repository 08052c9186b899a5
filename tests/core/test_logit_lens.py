"""The logit lens (issue #14): every residual stream of SmolLM2 read through its final
norm and unembedding. Its last row is the model's own output; ablations act on it."""

import numpy as np
import pytest
import torch

from core.ablation import Ablation
from core.adapters import lm_lens
from core.errors import Cancelled, InputError
from core.jobs import CancelToken
from core.session import Session
from core.zoo import smollm

needs_smollm = pytest.mark.skipif(not smollm.available(),
                                  reason="the smollm extra is not installed")
PROMPT = "The capital of France is"
#: Probabilities of the lens and of a softmax of the adapter's own logits, both float32
#: products of the same weights but with other batch shapes: they agree to ~1e-6.
PROB_TOL = 2e-5


@pytest.fixture(scope="module")
def lm():
    if not smollm.available():
        pytest.skip("the smollm extra is not installed")
    s = Session()
    s.open_model("smollm2-135m")
    return s


@pytest.fixture(scope="module")
def prompt():
    return smollm.encode(PROMPT)


@pytest.fixture(scope="module")
def lens(lm, prompt):
    return lm.logit_lens(prompt, int(smollm.encode(" Paris")[0]))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


def _assert_is_output(top_ids, top_probs, logits):
    """The lens row equals the softmax of the model's own logits: its probabilities are
    the k best, and each listed id has the probability listed (near-ties may come in
    either order)."""
    probs = _softmax(logits)
    best = -np.sort(-probs, axis=-1)[:, :top_ids.shape[-1]]
    assert np.abs(best - top_probs).max() < PROB_TOL
    listed = np.take_along_axis(probs, top_ids, -1)
    assert np.abs(listed - top_probs).max() < PROB_TOL
    assert (top_ids[:, 0] == probs.argmax(-1))[best[:, 0] - best[:, 1] > PROB_TOL].all()


@needs_smollm
def test_rows_are_every_stream_in_forward_order(lens, prompt):
    assert len(lens.rows) == 1 + 2 * smollm.LAYERS == 61
    assert lens.rows[:3] == ("block0.resid_pre", "block0.resid_mid", "block0.resid_post")
    assert lens.row_labels[:3] == ("embed", "0 attn", "0 mlp")
    assert lens.rows[-1] == "block29.resid_post" and lens.row_labels[-1] == "29 mlp"
    assert lens.top_ids.shape == (61, len(prompt), 10) and lens.top_probs.dtype == np.float32
    assert (np.diff(lens.top_probs, axis=-1) <= 0).all()   # best first
    assert not lens.top_probs.flags.writeable


@needs_smollm
def test_the_last_row_is_the_models_own_output(lm, lens, prompt):
    logits = lm.adapter.run(prompt[None]).outputs[0]
    _assert_is_output(lens.top_ids[-1], lens.top_probs[-1], logits)
    assert smollm.vocab()[lens.top_ids[-1, -1, 0]] == "␣Paris"


@needs_smollm
def test_every_row_equals_the_streams_read_one_by_one(lm, lens, prompt, monkeypatch):
    """The chunked in-place lens against the plain recipe: capture each stream with
    the adapter, then norm, unembed and softmax it alone."""
    model = lm.adapter.model
    streams = lm.adapter.run(prompt[None], capture=lens.rows).activations
    with torch.inference_mode():
        for r in (0, 1, 17, 40, 60):
            logits = model.unembed(model.norm(torch.from_numpy(streams[lens.rows[r]])))
            _assert_is_output(lens.top_ids[r], lens.top_probs[r], logits[0].numpy())
    monkeypatch.setattr(lm_lens, "CHUNK_CELLS", 3 * len(prompt))   # 3 rows a chunk
    again = lm.logit_lens(prompt, lens.target)
    np.testing.assert_array_equal(again.top_ids, lens.top_ids)
    np.testing.assert_allclose(again.top_probs, lens.top_probs, atol=PROB_TOL)


@needs_smollm
def test_target_probabilities_agree_with_the_top_tokens(lens):
    paris = lens.target
    listed = lens.top_ids == paris
    rows, cols, ranks = np.nonzero(listed)
    assert len(rows) > 0
    np.testing.assert_allclose(lens.target_probs[rows, cols],
                               lens.top_probs[rows, cols, ranks], rtol=1e-6)
    elsewhere = ~listed.any(-1)
    assert (lens.target_probs[elsewhere] <= lens.top_probs[..., -1][elsewhere] + 1e-7).all()
    assert lens.target_probs[-1, -1] > 0.5


@needs_smollm
def test_ablations_change_the_rows_after_them_only(lm, lens, prompt):
    heads = Ablation("block3.attn.heads", tuple(range(smollm.HEADS)))
    ablated = lm.logit_lens(prompt, lens.target, (heads,))
    after = lens.rows.index("block3.resid_mid")
    np.testing.assert_array_equal(ablated.top_ids[:after], lens.top_ids[:after])
    assert not np.allclose(ablated.top_probs[after:], lens.top_probs[after:])
    assert ablated.ablations == (heads,)
    logits = lm.adapter.run(prompt[None], ablations=(heads,)).outputs[0]
    _assert_is_output(ablated.top_ids[-1], ablated.top_probs[-1], logits)


@needs_smollm
def test_an_ablation_of_the_readout_acts_on_every_row(lm, lens, prompt):
    paris = Ablation("unembed", (lens.target,))
    ablated = lm.logit_lens(prompt, lens.target, (paris,))
    assert ablated.top_ids[-1, -1, 0] != lens.target
    assert not np.allclose(ablated.target_probs, lens.target_probs)
    logits = lm.adapter.run(prompt[None], ablations=(paris,)).outputs[0]
    _assert_is_output(ablated.top_ids[-1], ablated.top_probs[-1], logits)


@needs_smollm
def test_mean_ablation_through_the_session(lm, lens, prompt):
    mean = Ablation("block5.mlp", tuple(range(smollm.D_MODEL)), "mean")
    ablated = lm.logit_lens(prompt, None, (mean,))
    assert ablated.target is None and ablated.target_probs is None
    assert not np.allclose(ablated.top_probs[-1], lens.top_probs[-1])


@needs_smollm
def test_cancelled_between_chunks_with_progress(lm, prompt, monkeypatch):
    monkeypatch.setattr(lm_lens, "CHUNK_CELLS", 10 * len(prompt))   # 7 chunks
    seen = []

    def progress(fraction, text):
        seen.append(fraction)
        if fraction > 0:
            token.cancel()

    token = CancelToken(progress)
    with pytest.raises(Cancelled):
        lm.logit_lens(prompt, token=token)
    assert seen[0] == 0.0 and 0 < seen[-1] <= 1


@needs_smollm
def test_a_bad_target_is_a_sentence(lm, prompt):
    with pytest.raises(InputError, match="target token"):
        lm.logit_lens(prompt, 10 ** 6)


@pytest.mark.parametrize("model", ["digits_cnn", "induction_transformer"])
def test_a_model_without_a_readout_is_told_why(model):
    s = Session()
    info = s.open_model(model)
    x = s.sample(0).model_input
    with pytest.raises(InputError) as err:
        s.logit_lens(x)
    assert str(err.value) == lm_lens.NOT_AN_LM
    assert info.name == model


def test_two_stage_top_k_equals_torch_topk():
    gen = torch.Generator().manual_seed(0)
    values = torch.randn(50, 49152, generator=gen)
    values[3, 1000:1200] = 9.0   # many equal maxima in neighbouring blocks
    values[4] = 0.0
    for k in (1, 10):
        top, ids = lm_lens.top_k(values, k)
        ref = values.topk(k, -1)
        torch.testing.assert_close(top, ref.values, rtol=0, atol=0)
        # Ties may come back in another order: the values they index are what count.
        torch.testing.assert_close(values.gather(1, ids), ref.values, rtol=0, atol=0)
        assert all(len(set(row.tolist())) == k for row in ids)
