"""Deterministic CLIP and SigLIP tokenizers built offline from a word list.

The tiny CLIPs this package builds (tests, benchmarks, the embedded default) need a tokenizer that
exists without the Hub. :func:`build_clip_tokenizer` writes a standard CLIP byte-level BPE
(``vocab.json`` + ``merges.txt`` semantics, served by :class:`transformers.CLIPTokenizer`) whose
ids depend only on the word list, never on hashing or thread order:

* every one of the 256 byte symbols is in the vocabulary, alone and with the end-of-word marker, so
  no input is ever out of vocabulary (the unknown token is never produced, and in particular an
  unknown word can never turn into ``<|endoftext|>`` and end the prompt early);
* merges are learned on the word list by deterministic BPE (:func:`learn_merges`), so every
  listed word becomes exactly one token.

:func:`build_siglip_tokenizer` trains a SentencePiece unigram model on the word list (seeded, one
thread, so the same list gives the same ``spiece.model`` bytes in every process).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable, Sequence

from transformers import CLIPTokenizer, SiglipTokenizer

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
END_OF_WORD = "</w>"
SIGLIP_TEXT_LENGTH = 64  # SigLIP's text positions; the stock pipeline pads label texts to 64
PUNCTUATION = (".", ",", "'", "-", ":")


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins GPT-2 / CLIP byte-level BPE uses for raw bytes, in byte order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes, extra = [], 0
    for byte in range(256):
        if byte in printable:
            codes.append(byte)
        else:
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def _encode_word(word: str) -> str:
    symbols = _byte_symbols()
    return "".join(symbols[b] for b in word.encode("utf-8"))


def learn_merges(words: Iterable[str]) -> list[tuple[str, str]]:
    """Byte-pair merges learned on ``words`` (each counted once) until every word is one token.

    Classic BPE training, made deterministic: the most frequent adjacent pair is merged first, ties
    going to the lexicographically smallest pair. Applying the merges by rank (what BPE does at
    tokenization time) replays this training exactly, so every listed word becomes one token.
    """
    unique = sorted({w.lower() for w in words if w and not w.isspace()})
    for word in unique:
        if any(ch.isspace() for ch in word):
            raise ValueError(f"Tokenizer words must not contain whitespace, got {word!r}.")
    segmented = []
    for word in unique:
        pieces = list(_encode_word(word))
        pieces[-1] += END_OF_WORD
        segmented.append(pieces)
    merges: list[tuple[str, str]] = []
    while True:
        counts: dict[tuple[str, str], int] = {}
        for pieces in segmented:
            for pair in zip(pieces, pieces[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            return merges
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        merges.append(best)
        for i, pieces in enumerate(segmented):
            merged, j = [], 0
            while j < len(pieces):
                if j + 1 < len(pieces) and (pieces[j], pieces[j + 1]) == best:
                    merged.append(pieces[j] + pieces[j + 1])
                    j += 2
                else:
                    merged.append(pieces[j])
                    j += 1
            segmented[i] = merged


def build_clip_tokenizer(words: Iterable[str], model_max_length: int = 77) -> CLIPTokenizer:
    """Build a CLIP BPE tokenizer whose vocabulary holds every byte plus ``words`` as whole tokens.

    Args:
        words: words to make single tokens (lower-cased; order and duplicates do not matter).
        model_max_length: the text context length of the CLIP the tokenizer serves.

    Returns:
        A :class:`transformers.CLIPTokenizer`: ``<|startoftext|>`` is id 0, ``<|endoftext|>`` id 1
        (also the padding token), byte symbols follow, then merged pieces.
    """
    vocab: dict[str, int] = {BOS_TOKEN: 0, EOS_TOKEN: 1}
    for symbol in _byte_symbols():
        vocab.setdefault(symbol, len(vocab))
    for symbol in _byte_symbols():
        vocab.setdefault(symbol + END_OF_WORD, len(vocab))

    merges = learn_merges(words)
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    return CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=EOS_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        model_max_length=model_max_length,
    )


def build_siglip_tokenizer(words: Sequence[str], model_max_length: int = SIGLIP_TEXT_LENGTH) -> SiglipTokenizer:
    """Build a SigLIP tokenizer over a unigram SentencePiece model trained here on ``words``.

    Training is seeded and single-threaded, so the same ``words`` (in the same order) always give the
    same model file and ids. Special ids as SigLIP's: pad 0, eos 1 (appended), unk 2, no BOS;
    :data:`PUNCTUATION` marks are single pieces.

    Args:
        words: the words the captions and prompts use (lower-case).
        model_max_length: the text positions of the SigLIP the tokenizer serves.
    """
    import sentencepiece

    words = list(words)
    sentences = [" ".join(words[i : i + 6]) + " ." for i in range(len(words))] + words
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=model, model_type="unigram", vocab_size=len(words) + 40,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, user_defined_symbols=list(PUNCTUATION), hard_vocab_limit=False,
        num_threads=1, minloglevel=2, character_coverage=1.0,
    )
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "spiece.model")
        with open(path, "wb") as handle:
            handle.write(model.getvalue())
        return SiglipTokenizer(vocab_file=path, model_max_length=model_max_length)
