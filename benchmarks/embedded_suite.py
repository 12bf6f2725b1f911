"""The embedded tiny CLIP on the shapes world: is the suite worth measuring? (issue 3, item 3)

    python benchmarks/embedded_suite.py [--model embedded] [--shots 16] [--seed 1] [--json PATH]

Prints, with chance levels:

* the few-shot suite: per task, zero-shot accuracy (template "a photo of a {}." and the
  ``imagenet7`` ensemble), a plain ``shots``-shot logistic-regression probe on the frozen,
  L2-normalised image features (``C`` picked on the protocol's validation split), and the delta;
  then the suite means;
* domain shift (background styles): zero-shot and the probe (trained on the source styles) on
  each source style and each held-out style;
* GZSL zero-shot: unseen images among the unseen classes only (T1), and seen / unseen / H over
  all classes;
* pretraining time, steps and final loss (``training_info.json``) and the folder's size.

The marks the shapes world has to hit are checked at the end (``--check`` exits 1 if one is missed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

import hf_zsl
from hf_zsl import metrics, shapes
from hf_zsl.features import image_features
from hf_zsl.modeling.modeling_base import resolve_base_path

PROBE_CS = (0.1, 1.0, 10.0, 100.0, 1000.0)


def labels_of(dataset) -> np.ndarray:
    return np.asarray(dataset.select_columns(["label"]).with_format("numpy")["label"])


def zero_shot_scores(model, features: torch.Tensor, class_names: list[str]) -> np.ndarray:
    """`(images, classes)` zero-shot logits of ``model`` for ``class_names``."""
    text = model.tokenizer(class_names, padding=True, return_tensors="pt")
    with torch.inference_mode():
        return model(**text, image_embeds=features).logits_per_image.float().numpy()


def fit_probe(train_x, train_y, val_x, val_y) -> LogisticRegression:
    """Logistic regression on the training features; ``C`` with the best validation accuracy (ties: smaller C)."""
    best, best_accuracy = None, -1.0
    for c in PROBE_CS:
        probe = LogisticRegression(C=c, max_iter=2000).fit(train_x, train_y)
        accuracy = float(np.mean(probe.predict(val_x) == val_y))
        if accuracy > best_accuracy + 1e-9:
            best, best_accuracy = probe, accuracy
    return best


def features(model, dataset) -> torch.Tensor:
    return image_features(model, dataset, progress=False)


def fewshot(models: dict, shots: int, seed: int) -> dict:
    model = models["single"]
    results = {}
    for name, protocol in shapes.fewshot_suite(k=shots, seed=seed).items():
        test, names = protocol.test, protocol.class_names
        test_x, test_y = features(model, test), labels_of(test)
        row = {"classes": len(names), "chance": 1.0 / len(names)}
        for templates, m in models.items():
            row[f"zeroshot_{templates}"] = metrics.accuracy(zero_shot_scores(m, test_x, names).argmax(1), test_y)
        probe = fit_probe(features(model, protocol.train).numpy(), labels_of(protocol.train),
                          features(model, protocol.val).numpy(), labels_of(protocol.val))
        row["probe"] = metrics.accuracy(probe.predict(test_x.numpy()), test_y)
        row["probe_C"] = float(probe.C)
        row["delta"] = row["probe"] - row["zeroshot_single"]
        results[name] = row
    return results


def domain_shift(models: dict, shots: int, seed: int) -> dict:
    model = models["single"]
    protocol = shapes.domain_shift(k=shots, seed=seed)
    names = protocol.class_names
    probe = fit_probe(features(model, protocol.train).numpy(), labels_of(protocol.train),
                      features(model, protocol.val).numpy(), labels_of(protocol.val))
    rows = {}
    for domain, test in protocol.test_splits().items():
        test_x, test_y = features(model, test), labels_of(test)
        rows[domain] = {
            "role": "source" if domain in protocol.source_domains else "held-out",
            "zeroshot_single": metrics.accuracy(zero_shot_scores(model, test_x, names).argmax(1), test_y),
            "zeroshot_imagenet7": metrics.accuracy(zero_shot_scores(models["imagenet7"], test_x, names).argmax(1), test_y),
            "probe": metrics.accuracy(probe.predict(test_x.numpy()), test_y),
        }
    for role in ("source", "held-out"):
        group = [r for r in rows.values() if r["role"] == role]
        rows[f"mean {role}"] = {"role": role, **{k: float(np.mean([r[k] for r in group])) for k in ("zeroshot_single", "zeroshot_imagenet7", "probe")}}
    return {"chance": 1.0 / len(names), "domains": rows}


def gzsl(models: dict) -> dict:
    protocol = shapes.gzsl()
    names = protocol.class_names
    seen_ids = [names.index(c) for c in protocol.seen_classes]
    unseen_ids = [names.index(c) for c in protocol.unseen_classes]
    results = {"chance_all": 1.0 / len(names), "chance_unseen_only": 1.0 / len(unseen_ids)}
    splits = protocol.test_splits()
    for templates, model in models.items():
        scores = {s: zero_shot_scores(model, features(model, d), names) for s, d in splits.items()}
        refs = {s: labels_of(d) for s, d in splits.items()}
        preds = np.concatenate([scores["seen"].argmax(1), scores["unseen"].argmax(1)])
        both = metrics.gzsl(preds, np.concatenate([refs["seen"], refs["unseen"]]), seen_ids, unseen_ids)
        t1 = np.asarray(unseen_ids)[scores["unseen"][:, unseen_ids].argmax(1)]
        results[templates] = {"zsl_unseen": metrics.zsl_unseen(t1, refs["unseen"], unseen_ids), **both}
    return results


def checkpoint(base: str) -> dict:
    folder = resolve_base_path(base)
    files = [f for f in os.listdir(folder) if os.path.isfile(os.path.join(folder, f))]
    info = {"folder": folder, "bytes": sum(os.path.getsize(os.path.join(folder, f)) for f in files), "files": sorted(files)}
    path = os.path.join(folder, "training_info.json")
    if os.path.exists(path):
        with open(path) as f:
            training = json.load(f)
        training.pop("loss_history", None)
        info["training"] = training
    return info


def evaluate(base: str = "embedded", shots: int = 16, seed: int = 1) -> dict:
    """Every number of the benchmark, as a dict (see the module docstring)."""
    models = {t: hf_zsl.build("zeroshot", base, templates=t) for t in ("single", "imagenet7")}
    start = time.perf_counter()
    result = {
        "model": base,
        "shots": shots,
        "seed": seed,
        "fewshot": fewshot(models, shots, seed),
        "domain_shift": domain_shift(models, shots, seed),
        "gzsl": gzsl(models),
        "checkpoint": checkpoint(base),
    }
    tasks = result["fewshot"].values()
    result["fewshot_mean"] = {k: float(np.mean([t[k] for t in tasks])) for k in ("zeroshot_single", "zeroshot_imagenet7", "probe", "chance")}
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def check_marks(result: dict) -> list[tuple[str, bool]]:
    """The issue's marks for the shapes world, each as ``(description, met)``."""
    tasks = result["fewshot"]
    strong = [n for n, t in tasks.items() if t["zeroshot_single"] >= 0.70]
    weak = [n for n, t in tasks.items() if t["zeroshot_single"] <= 0.50 and t["delta"] >= 0.15]
    mean = result["fewshot_mean"]["zeroshot_single"]
    domains = result["domain_shift"]["domains"]
    source, held_out = domains["mean source"]["zeroshot_single"], domains["mean held-out"]["zeroshot_single"]
    g = result["gzsl"]["single"]
    return [
        (f"a task with zero-shot >= 70% ({', '.join(strong) or 'none'})", bool(strong)),
        (f"two tasks with zero-shot <= 50% and probe >= zero-shot + 15 ({', '.join(weak) or 'none'})", len(weak) >= 2),
        (f"suite mean zero-shot in [35%, 85%] ({mean:.1%})", 0.35 <= mean <= 0.85),
        (f"held-out styles clearly below source styles ({held_out:.1%} vs {source:.1%})", held_out <= source - 0.10),
        (f"GZSL unseen above chance (T1 {g['zsl_unseen']:.1%} vs {result['gzsl']['chance_unseen_only']:.1%}; "
         f"all-class {g['unseen']:.1%} vs {result['gzsl']['chance_all']:.1%})",
         g["zsl_unseen"] > 2 * result["gzsl"]["chance_unseen_only"] and g["unseen"] > 2 * result["gzsl"]["chance_all"]),
    ]


def pct(x: float) -> str:
    return f"{100 * x:5.1f}"


def report(result: dict) -> None:
    shots = result["shots"]
    print(f"\nFew-shot suite ({shots} shots, seed {result['seed']}); accuracy in %; zero-shot 'a photo of a {{}}.' / imagenet7")
    print(f"{'task':<16}{'classes':>8}{'chance':>8}{'ZS':>7}{'ZS-7':>7}{'probe':>7}{'delta':>7}")
    for name, t in result["fewshot"].items():
        print(f"{name:<16}{t['classes']:>8}{pct(t['chance']):>8}{pct(t['zeroshot_single']):>7}"
              f"{pct(t['zeroshot_imagenet7']):>7}{pct(t['probe']):>7}{100 * t['delta']:>+7.1f}")
    m = result["fewshot_mean"]
    print(f"{'suite mean':<16}{'':>8}{pct(m['chance']):>8}{pct(m['zeroshot_single']):>7}{pct(m['zeroshot_imagenet7']):>7}"
          f"{pct(m['probe']):>7}{100 * (m['probe'] - m['zeroshot_single']):>+7.1f}")

    d = result["domain_shift"]
    print(f"\nDomain shift (background styles; probe trained on the source styles); chance {pct(d['chance'])}")
    print(f"{'style':<16}{'role':>9}{'ZS':>7}{'ZS-7':>7}{'probe':>7}")
    for domain, r in d["domains"].items():
        print(f"{domain:<16}{r['role']:>9}{pct(r['zeroshot_single']):>7}{pct(r['zeroshot_imagenet7']):>7}{pct(r['probe']):>7}")

    g = result["gzsl"]
    print("\nGZSL zero-shot (80 colour × shape classes, 16 unseen in pretraining)")
    print(f"{'templates':<16}{'T1 unseen':>10}{'seen':>7}{'unseen':>7}{'H':>7}")
    for templates in ("single", "imagenet7"):
        r = g[templates]
        print(f"{templates:<16}{pct(r['zsl_unseen']):>10}{pct(r['seen']):>7}{pct(r['unseen']):>7}{pct(r['harmonic']):>7}")
    print(f"{'chance':<16}{pct(g['chance_unseen_only']):>10}{pct(g['chance_all']):>7}{pct(g['chance_all']):>7}")

    c = result["checkpoint"]
    print(f"\nCheckpoint {c['folder']}: {c['bytes'] / 1e6:.2f} MB ({', '.join(c['files'])})")
    t = c.get("training")
    if t:
        print(f"Pretraining: {t['parameters']:,} parameters, {t['steps']} steps × {t['config']['batch_size']} pairs, "
              f"{t['wall_seconds'] / 60:.1f} min wall on {t['num_threads']} threads, final loss {t['final_loss']:.3f}")
    print(f"(benchmark ran in {result['seconds']:.0f} s)")
    print("\nMarks:")
    for text, met in check_marks(result):
        print(f"  [{'x' if met else ' '}] {text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded", help="a base folder, 'embedded' or 'embedded-siglip'")
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    parser.add_argument("--check", action="store_true", help="exit 1 if a mark is missed")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    result = evaluate(args.model, args.shots, args.seed)
    report(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    if args.check and not all(met for _, met in check_marks(result)):
        sys.exit(1)


if __name__ == "__main__":
    main()
