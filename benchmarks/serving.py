"""Serving throughput: images/s of (a) the bare image encoder, (b) the stock pipeline on a
``CLIPModel`` and (c) ``pipeline()`` on hf_zsl's zero-shot model, for 10 / 100 / 1000 labels at
batch 1 and 16, on a ViT-B/32-sized CLIP with random weights (offline).

    python benchmarks/serving.py [--threads 2] [--images 32]

Goal: (c) >= 0.9 x (a) and >= 10 x (b) at 100 labels, batch 1.
"""

import argparse
import os
import tempfile
import time

import numpy as np
import torch
from PIL import Image
from transformers import CLIPConfig, CLIPModel, pipeline

import hf_zsl
from hf_zsl.tiny import BASIC_WORDS, clip_image_processor
from hf_zsl.tokenizer import build_clip_tokenizer


def labels_for(n: int) -> list[str]:
    colours = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white", "pink", "brown"]
    shapes = ["circle", "square", "triangle", "star", "hexagon", "cross", "heart", "diamond", "ring", "tree"]
    sizes = ["small", "large", "tiny", "big", "plain", "striped", "outlined", "solid", "checkered", "bad"]
    return [f"{sizes[i // 100 % 10]} {colours[i // 10 % 10]} {shapes[i % 10]}" for i in range(n)]


def save_vit_b32(folder: str) -> None:
    """A CLIPModel with ViT-B/32's sizes (the CLIPConfig defaults) and random weights."""
    tokenizer = build_clip_tokenizer(BASIC_WORDS)
    config = CLIPConfig()
    config.text_config.bos_token_id = tokenizer.bos_token_id
    config.text_config.eos_token_id = tokenizer.eos_token_id
    config.text_config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(0)
    CLIPModel(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    clip_image_processor(config.vision_config.image_size).save_pretrained(folder)


def images_per_second(run, n_images: int, batch: int) -> float:
    run(batch)  # warm-up
    start = time.perf_counter()
    for _ in range(max(1, n_images // batch)):
        run(batch)
    return max(1, n_images // batch) * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=32, help="images timed per (a)/(c) cell")
    parser.add_argument("--stock-images", type=int, default=4, help="images timed per (b) cell (it is slow)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    folder = tempfile.mkdtemp(prefix="vit-b32-")
    save_vit_b32(folder)
    ours_folder = os.path.join(folder, "zeroshot")
    hf_zsl.build("zeroshot", folder, templates="This is a photo of {}.").save_pretrained(ours_folder)

    rng = np.random.RandomState(0)
    pool = [Image.fromarray((rng.rand(256, 256, 3) * 255).astype(np.uint8)) for _ in range(16)]
    clip = CLIPModel.from_pretrained(folder).eval()
    processor = clip_image_processor(224)
    pixels = processor(images=pool, return_tensors="pt")["pixel_values"]
    stock = pipeline("zero-shot-image-classification", model=folder)
    ours = pipeline("zero-shot-image-classification", model=ours_folder)

    def bare(batch):
        with torch.inference_mode():
            clip.get_image_features(pixel_values=pixels[:batch])

    print(f"threads={args.threads}  torch={torch.__version__}  ViT-B/32 sizes, random weights")
    print(f"{'labels':>6} {'batch':>5} | {'(a) encoder':>11} {'(b) stock':>10} {'(c) hf_zsl':>10} | {'c/a':>5} {'c/b':>7}")
    for n_labels in (10, 100, 1000):
        labels = labels_for(n_labels)
        for batch in (1, 16):
            def piped(classifier):
                return lambda b: classifier(pool[:b], candidate_labels=labels, batch_size=b)

            a = images_per_second(bare, args.images, batch)
            b = images_per_second(piped(stock), max(args.stock_images, batch), batch)
            c = images_per_second(piped(ours), args.images, batch)
            print(f"{n_labels:>6} {batch:>5} | {a:>11.1f} {b:>10.2f} {c:>10.1f} | {c / a:>5.2f} {c / b:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
