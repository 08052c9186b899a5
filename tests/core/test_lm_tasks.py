"""SmolLM2's evaluation tasks: what they hold, that the intact model solves the name
prompts, and that each stays within the logits memory budget."""

import numpy as np
import pytest

from core.zoo import smollm

pytestmark = pytest.mark.skipif(not smollm.available(), reason="the [smollm] extra is absent")

from core import lm_tasks  # noqa: E402
from core.errors import InputError  # noqa: E402

MODEL = "smollm2-135m"
#: The evaluator keeps (N, T, vocabulary) float32 logits per task.
LOGITS_BUDGET = 160e6


def test_tasks_are_listed_for_the_language_model_only():
    assert [t.name for t in lm_tasks.tasks(MODEL)] == ["induction", "names", "text"]
    assert lm_tasks.tasks("digits_cnn") == ()
    with pytest.raises(InputError, match="not a language model"):
        lm_tasks.dataset("digits_cnn", "names")
    with pytest.raises(InputError, match="no task 'poetry'"):
        lm_tasks.dataset(MODEL, "poetry")


@pytest.mark.parametrize("task", ["induction", "names", "text"])
def test_each_task_fits_the_budget_and_names_its_set(task):
    ds = lm_tasks.dataset(MODEL, task)
    listed = next(t for t in lm_tasks.tasks(MODEL) if t.name == task)
    assert ds.name == listed.dataset
    assert ds.inputs.size * smollm.VOCAB_SIZE * 4 <= LOGITS_BUDGET
    assert ds.inputs.shape[1] <= smollm.MAX_TOKENS
    assert (ds.labels >= 0).any() and (ds.groups[ds.labels >= 0] >= 0).all()


def test_name_prompts_score_the_other_name_at_the_last_token():
    ds = lm_tasks.load_names()
    assert len(ds) == 40
    vocab = smollm.vocab()
    for row, labels, text in zip(ds.inputs, ds.labels, ds.texts):
        scored = np.flatnonzero(labels >= 0)
        length = int((row != ds.pad_id).sum())
        assert list(scored) == [length - 1]       # only the answer position
        answer = vocab[labels[scored[0]]].replace("␣", " ")
        # The answer is named once; the other name twice (introduced, then giving).
        words = text.replace(",", " ").replace(".", " ").split()
        others = [n.strip() for n in lm_tasks.NAMES if n.strip() in words and n != answer]
        assert words.count(answer.strip()) == 1
        assert len(others) == 1 and words.count(others[0]) == 2
        assert smollm.decode(row[:length]) == text


def test_text_rows_predict_their_next_token():
    ds = lm_tasks.load_text()
    assert lm_tasks.text_path().stat().st_size >= 3000
    for row, labels in zip(ds.inputs, ds.labels):
        n = int((labels >= 0).sum())
        assert np.array_equal(labels[:n], row[1:n + 1])
        assert (labels[n:] < 0).all()


def test_the_intact_model_solves_the_name_prompts():
    from core.analysis.cache import ActivationCache
    from core.analysis.evaluate import Evaluator
    from core.zoo.loading import open_zoo

    result = Evaluator(open_zoo(MODEL), lm_tasks.load_names(), ActivationCache(1 << 26)).evaluate()
    assert result.score >= 0.9   # measured: 0.95 (38 of 40)
