"""Tokenizers: Hugging Face tokenizer.json through `tokenizers`, glassllm's BPE re-implemented."""

import numpy as np
import pytest
import transformer_factories as fx
from ctattn.analysis.transformers import encode, load_checkpoint, load_tokenizer
from ctattn.analysis.transformers.tokenization import GlassBPE


def test_hf_tokenizer_json(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, "hello": 1, "world": 2, "the": 3, "cat": 4}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fx.write(tmp_path, fx.GPT2_CONFIG, fx.gpt2_state(0))
    tok.save(str(tmp_path / "tokenizer.json"))
    model = load_checkpoint(tmp_path)
    np.testing.assert_array_equal(encode(model, "hello the cat zebra"), [1, 3, 4, 0])
    t = load_tokenizer(tmp_path)
    assert t.tokens([1, 2]) == ["hello", "world"] and t.vocab_size == 5


def test_ids_pass_through_and_no_tokenizer(tmp_path):
    fx.write(tmp_path, fx.GPT2_CONFIG, fx.gpt2_state(0))
    model = load_checkpoint(tmp_path)
    np.testing.assert_array_equal(encode(model, [4, 5, 6]), [4, 5, 6])
    assert load_tokenizer(tmp_path) is None
    with pytest.raises(ValueError, match="pass token ids"):
        encode(model, "some text")
    with pytest.raises(ValueError, match="1-D integer"):
        encode(model, [1.5, 2.0])


TEXTS = ["The little girl said, “Hello!”\nThen   she ran.", "Olá, coração! Ação ½ 日本", "", "  \n\n a"]


@pytest.mark.parametrize("lang", ["en", "pt"])
def test_glass_bpe_matches_glassllm(lang):
    glassllm = pytest.importorskip("glassllm")
    from ctattn.analysis.transformers.glassllm import glassllm_weights_path

    path = glassllm_weights_path(lang).with_name(f"{lang}.tokenizer.json")
    ours, theirs = GlassBPE.load(path), glassllm.Tokenizer.load(path)
    assert ours.vocab_size == theirs.vocab_size
    for text in TEXTS:
        ids = ours.encode(text)
        assert ids == theirs.encode(text)
        assert ours.decode(ids) == theirs.decode(ids)
