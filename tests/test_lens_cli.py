"""``--lens`` on the command line (issue #14): the scripted run opens the lens dock and
waits for it; on a model without a readout the dock's sentence is the outcome, not an
error."""

from tests.test_main import _screenshot


def test_lens_of_an_image_model_is_a_sentence_not_a_failure(tmp_path):
    proc = _screenshot(tmp_path, "--model", "digits_cnn", "--lens", "--lens-target",
                       " Paris", "--size", "1024x640")
    assert "error:" not in proc.stdout and "Traceback" not in proc.stderr
