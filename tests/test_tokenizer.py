"""The offline CLIP tokenizer: whole-word tokens, no unknowns, the same ids in every process."""

import json
import subprocess
import sys

from hf_zsl.shapes import shapes_vocabulary
from hf_zsl.tokenizer import build_clip_tokenizer

SCRIPT = (
    "import json, sys; from hf_zsl.tokenizer import build_clip_tokenizer; "
    "t = build_clip_tokenizer(json.loads(sys.argv[1])); "
    "print(json.dumps(t(['a photo of a crimson star.', 'zebra!'])['input_ids']))"
)


def test_every_listed_word_is_one_token():
    words = shapes_vocabulary()
    tokenizer = build_clip_tokenizer(words)
    assert [w for w in words if len(tokenizer(w, add_special_tokens=False)["input_ids"]) != 1] == []


def test_unlisted_text_never_hits_the_end_of_text_token():
    tokenizer = build_clip_tokenizer(["red", "star"])
    ids = tokenizer("zebra ünïcode !?")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.eos_token_id not in ids[1:-1]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "zebra ünïcode !?"


def test_same_ids_in_another_process():
    words = shapes_vocabulary()
    here = build_clip_tokenizer(words)(["a photo of a crimson star.", "zebra!"])["input_ids"]
    out = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(words)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == here
