"""Turning text into token ids for a loaded model.

* Hugging Face ``tokenizer.json`` (a file with a ``"model"`` entry): read with the
  ``tokenizers`` package (``Tokenizer.from_file``).
* glassllm ``{lang}.tokenizer.json`` (``{"version": 1, "alphabet": [...], "merges": [...]}``):
  re-implemented here (:class:`GlassBPE`), identical to ``glassllm.Tokenizer.encode``: NFC, spaces
  become ``"▁"``, chunks ``\\n | ▁*[^▁\\n]+ | ▁+``, then within each chunk repeatedly merge the
  lowest-rank adjacent pair (all its non-overlapping occurrences, left to right); vocabulary
  ``<pad> <unk> <bos> <eos>`` + alphabet + merged pairs; unknown pieces map to ``<unk>``.
* Otherwise there is no tokenizer and callers pass token ids.

:func:`encode` accepts either text or an integer sequence (returned unchanged as an array).
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import numpy as np

__all__ = ["GlassBPE", "HFTokenizer", "load_tokenizer", "encode"]


class HFTokenizer:
    """Thin wrapper of ``tokenizers.Tokenizer`` with ``encode``/``decode``/``tokens``."""

    def __init__(self, path: str | Path):
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise ValueError("tokenizer: the 'tokenizers' package is needed to read tokenizer.json") from None
        try:
            self._tok = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise ValueError(f"tokenizer: cannot read {path} ({exc})") from None
        self.path = str(path)

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size()

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=add_special_tokens).ids)

    def tokens(self, ids) -> list[str]:
        return [self._tok.id_to_token(int(i)) for i in ids]

    def decode(self, ids) -> str:
        return self._tok.decode([int(i) for i in ids])


class GlassBPE:
    """glassllm's character BPE (see module docstring)."""

    SPACE = "▁"
    SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")
    _CHUNK = re.compile(r"\n|▁*[^▁\n]+|▁+")

    def __init__(self, alphabet, merges, path: str = ""):
        self.merges = [tuple(m) for m in merges]
        self.ranks = {pair: r for r, pair in enumerate(self.merges)}
        self.vocab = list(self.SPECIALS) + list(alphabet) + [a + b for a, b in self.merges]
        self.token_to_id = {tok: i for i, tok in enumerate(self.vocab)}
        self.unk_id = self.token_to_id["<unk>"]
        self.path = path

    @classmethod
    def load(cls, path: str | Path) -> GlassBPE:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(data["alphabet"], data["merges"], str(path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"tokenizer: cannot read {path} as a glassllm tokenizer ({exc})") from None

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def _merge(self, chunk: str) -> list[str]:
        symbols = list(chunk)
        while len(symbols) > 1:
            ranked = [self.ranks[p] for p in zip(symbols, symbols[1:]) if p in self.ranks]
            if not ranked:
                break
            pair = self.merges[min(ranked)]
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            symbols = out
        return symbols

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        text = unicodedata.normalize("NFC", text).replace(" ", self.SPACE)
        return [
            self.token_to_id.get(piece, self.unk_id)
            for chunk in self._CHUNK.findall(text)
            for piece in self._merge(chunk)
        ]

    def tokens(self, ids) -> list[str]:
        return [self.vocab[int(i)] for i in ids]

    def decode(self, ids) -> str:
        pieces = [
            "⁇" if t == "<unk>" else t for t in self.tokens(ids) if t == "<unk>" or t not in self.SPECIALS
        ]
        return "".join(pieces).replace(self.SPACE, " ")


def load_tokenizer(path: str | Path | None):
    """A tokenizer for ``path`` (a ``tokenizer.json`` file or a directory holding one), or None."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.json"
        if not path.is_file():
            return None
    if not path.is_file():
        raise ValueError(f"tokenizer: file not found: {path}")
    try:
        head = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"tokenizer: cannot parse {path} as JSON ({exc})") from None
    if isinstance(head, dict) and "alphabet" in head and "merges" in head and "model" not in head:
        return GlassBPE(head["alphabet"], head["merges"], str(path))
    return HFTokenizer(path)


def encode(tokenizer_or_model, text_or_ids, add_special_tokens: bool = True) -> np.ndarray:
    """Token ids ``(N,)`` from text (needs a tokenizer) or from ids (returned as an int array).

    ``tokenizer_or_model``: a tokenizer, a :class:`~.model.TransformerModel` (its
    ``extra["tokenizer_path"]`` is used) or None.
    """
    if not isinstance(text_or_ids, str):
        ids = np.asarray(text_or_ids)
        if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
            raise ValueError(
                f"token ids: expected a 1-D integer sequence, got shape {ids.shape} dtype {ids.dtype}"
            )
        return ids.astype(np.int64)
    tok = tokenizer_or_model
    if tok is not None and hasattr(tok, "extra"):
        tok = load_tokenizer(tok.extra.get("tokenizer_path"))
    if tok is None:
        raise ValueError("text given but the model has no tokenizer (no tokenizer.json); pass token ids")
    return np.asarray(tok.encode(text_or_ids, add_special_tokens=add_special_tokens), dtype=np.int64)
