"""How much the DFZSL server knows beyond zero-shot CLIP: each server's accuracy on held-out base images.

    python benchmarks/dfzsl_servers.py [--protocol base2new|gzsl] [--base embedded|FOLDER] [--threads 1]

Fits every server of :data:`hf_zsl.methods.dfzsl.SERVERS` on the shapes split's base (seen) training
images and scores it, as the cosine classifier the data-free learner queries, on the base (seen)
classes' *validation* images, next to zero-shot CLIP with DFZSL's untrained prompt ("a photo of a
<label>."). Only the server's own data is read: no test image, no new-class image. The server is all
the data-free stages learn the base classes from, so DFZSL's base accuracy can hardly exceed the best
server's. The linear probe chooses its regularisation and initialisation on these same validation images,
so its figure is optimistic; the other servers and zero-shot choose nothing.
"""

from __future__ import annotations

import argparse
import os

import torch

import hf_zsl
from hf_zsl import shapes
from hf_zsl.methods import dfzsl
from hf_zsl.methods.dfzsl.classifier import predict
from hf_zsl.modeling.prompting import name_token_ids
from hf_zsl.protocols import relabel
from hf_zsl.training import LabelledFeatures

SPLITS = {"base2new": shapes.base_to_new, "gzsl": shapes.gzsl}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", choices=sorted(SPLITS), default="base2new")
    parser.add_argument("--base", default="embedded", help="CLIP to build on: 'embedded' or a folder")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("HF_ZSL_PROGRESS", "0")
    torch.set_num_threads(args.threads)
    view = SPLITS[args.protocol](None).training_view()
    seen, _ = dfzsl.class_split(view)
    model = hf_zsl.build("dfzsl", args.base)
    val = LabelledFeatures.of(model, relabel(view.val, seen, view.label_column), seen, view.label_column)
    with torch.no_grad():
        prompts = model.prompt_tuned_features(name_token_ids(model.tokenizer, seen)).float()
    zero_shot = (predict(val.features, prompts) == val.labels).float().mean()
    print(f"{args.protocol}: {len(seen)} base classes, {len(val.labels)} validation images")
    print(f"  zero-shot CLIP ('a photo of a <label>.'): {100 * zero_shot:.1f}%")
    for kind in dfzsl.SERVERS:
        _, info = dfzsl.train_server(model, view, seen, kind)
        print(f"  server {kind}: {100 * info['val_accuracy']:.1f}%  ({info['train_seconds']:.1f} s)")


if __name__ == "__main__":
    main()
