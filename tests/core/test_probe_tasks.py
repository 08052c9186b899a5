"""The questions Session.probes asks of each model (issue #13): the digit class on every
layer of the CNN, and for the induction transformer the next letter and "is this
position in the repeated half?" — a property the token alone cannot tell."""

import numpy as np
import pytest

from core.errors import InputError
from core.session import Session


def test_the_digits_cnn_is_probed_on_every_layer_and_the_input(session):
    (report,) = session.probes()
    assert report.sites == ("input", *(i.name for i in session.adapter.layers()))
    at = dict(zip(report.sites, report.held_out))
    assert at["relu3"] >= 0.95
    assert np.all(report.shuffled <= 0.25)  # the control stays near chance (~0.08)


def test_the_induction_probes_find_the_repeat_in_block1_attention():
    s = Session()
    s.open_model("induction_transformer")
    letter, half = s.probes()
    assert (letter.task, half.task) == ("next letter", "in the repeated half")
    nxt = dict(zip(letter.sites, letter.held_out))
    assert nxt["embed"] < 0.1 and nxt["unembed"] >= 0.95
    rep = dict(zip(half.sites, half.held_out))
    assert rep["embed.tok"] < 0.6  # a letter alone does not say which copy it is in
    assert rep["block1.attn.heads"] >= 0.95


def test_the_sentence_encoder_has_no_labels_to_probe():
    pytest.importorskip("tokenizers")
    s = Session()
    s.open_model("minilm")
    with pytest.raises(InputError, match="no labels"):
        s.probes()
