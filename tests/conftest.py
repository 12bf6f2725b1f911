"""Test set-up: offline Hub, a private HF_HOME, and tiny CLIPs built in the test session."""

import os
import tempfile

_HOME = tempfile.mkdtemp(prefix="hfzsl-test-home-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HOME"] = _HOME
os.environ.setdefault("HF_ZSL_CACHE", os.path.join(_HOME, "hf_zsl"))
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module of small-tensor tests, restored afterwards: with two threads
    on busy cores every parallel region waits for a descheduled thread (measured up to 9x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> str:
    """A folder holding a random-weight tiny CLIP, its tokenizer and image processor."""
    from hf_zsl.tiny import save_tiny_clip

    return save_tiny_clip(str(tmp_path_factory.mktemp("tiny_clip")))


@pytest.fixture(scope="session")
def family_base(tmp_path_factory, tiny_base):
    """``family_base(family)``: a folder holding a random-weight tiny base of ``family``
    (:data:`hf_zsl.tiny_families.FAMILIES`; ``"clip"`` is :func:`tiny_base`), built once per session."""
    from hf_zsl.tiny_families import save_tiny_base

    folders = {"clip": tiny_base}

    def folder(family: str) -> str:
        if family not in folders:
            folders[family] = save_tiny_base(str(tmp_path_factory.mktemp(f"tiny_{family}")), family)
        return folders[family]

    return folder


@pytest.fixture(scope="session")
def images() -> list[Image.Image]:
    """Three RGB images of different sizes (the processor resizes and crops them)."""
    rng = np.random.RandomState(0)
    return [Image.fromarray((rng.rand(h, w, 3) * 255).astype(np.uint8)) for h, w in [(40, 40), (48, 36), (32, 64)]]


LABELS = ["red circle", "blue square", "green star", "cat"]
