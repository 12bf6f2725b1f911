"""Build the general vocabularies shipped in ``hf_zsl/vocabularies/`` from public sources.

``open_semantics.txt`` (RTOS's default anchors) is the union of the class names of ImageNet-1k
and the other ten datasets of the CoOp / Tip-Adapter few-shot suite, as CLIP names them.
``visual_concepts.txt`` (CCLI's default concept bank) is a union of public vocabularies of
objects, parts, attributes (colours, materials, shapes, textures) and scenes. Entries are
normalised (underscores and runs of whitespace become one space, surrounding space is dropped)
and deduplicated case-insensitively, keeping the first spelling met in the order the sources are
listed below. ``hf_zsl/vocabularies/SOURCES.md`` records the sources, licences and counts.

The data files of the sources are read as text (Python sources through ``ast``, never
imported). Run from the repository root with local copies of the sources::

    python recipes/build_vocabularies.py \\
        --clip /work/official/CLIP \\                        # github.com/openai/CLIP
        --open-clip-metadata .../open_clip/zero_shot_metadata.py \\   # pip open_clip_torch
        --bottom-up-attention /work/official/bottom-up-attention \\
        --detectron2 /work/official/detectron2 \\
        --places365 /work/official/places365

It prints the per-source counts that SOURCES.md lists.
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "hf_zsl" / "vocabularies"

# The ten non-ImageNet datasets of the CoOp suite, as sections of CLIP's data/prompts.md.
COOP_DATASETS = ("Caltech101", "OxfordPets", "StanfordCars", "Flowers102", "Food101",
                 "FGVCAircraft", "SUN397", "DescribableTextures", "EuroSAT", "UCF101")


def normalise(name: str) -> str:
    """One spelling per entry: underscores as spaces, single spaces, no surrounding space."""
    return " ".join(name.replace("_", " ").split())


def dedupe(groups: list[tuple[str, list[str]]]) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """Concatenate ``groups`` in order, dropping blanks and case-insensitive repeats.

    Returns the entries and, per group, (entries read, entries new to the union).
    """
    seen, out, counts = set(), [], {}
    for label, names in groups:
        new = 0
        for name in map(normalise, names):
            if name and name.casefold() not in seen:
                seen.add(name.casefold())
                out.append(name)
                new += 1
        counts[label] = (len(names), new)
    return out, counts


def _literal(path: Path, variable: str):
    """The value of a top-level ``variable = <literal>`` assignment in a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == variable for t in node.targets):
            return ast.literal_eval(node.value)
    raise KeyError(f"{variable} not found in {path}")


def clip_prompt_classes(prompts_md: Path) -> dict[str, list[str]]:
    """The ``classes = [...]`` list of every dataset section of CLIP's data/prompts.md."""
    sections = re.split(r"^## ", prompts_md.read_text(encoding="utf-8"), flags=re.M)[1:]
    classes = {}
    for section in sections:
        title = section.split("\n", 1)[0].strip()
        match = re.search(r"classes = (\[.*?\n\])", section, re.S)
        if match:
            classes[title] = ast.literal_eval(match.group(1))
    return classes


def open_semantics(clip: Path, open_clip_metadata: Path) -> list[tuple[str, list[str]]]:
    """ImageNet-1k (open_clip's copy of CLIP's names) + the ten CoOp datasets (CLIP's names)."""
    groups = [("ImageNet-1k", list(_literal(open_clip_metadata, "IMAGENET_CLASSNAMES")))]
    classes = clip_prompt_classes(clip / "data" / "prompts.md")
    for dataset in COOP_DATASETS:
        names = classes[dataset]
        if dataset == "Caltech101":
            names = [n for n in names if n != "background"]  # not a category (CoOp drops it)
        groups.append((dataset, names))
    return groups


def _first_synonyms(path: Path) -> list[str]:
    """Visual Genome vocab files list comma-separated synonyms per line: keep the first."""
    return [line.split(",")[0] for line in path.read_text(encoding="utf-8").splitlines()]


def _places(path: Path) -> list[str]:
    """``/a/apartment_building/outdoor 12`` -> ``apartment building (outdoor)``."""
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()[0].strip("/").split("/")[1:]
        names.append(parts[0] + "".join(f" ({p})" for p in parts[1:]))
    return names


def _coco_panoptic(path: Path) -> list[str]:
    """COCO panoptic categories: the 80 things, then the 53 stuff names without merge suffixes."""
    names = []
    for category in _literal(path, "COCO_CATEGORIES"):
        name = re.sub(r"-(merged|other)", "", category["name"])
        names.append(name.replace("-", " "))
    return names


def visual_concepts(clip: Path, bua: Path, detectron2: Path, places365: Path):
    """Attributes, textures, objects and scenes from the sources SOURCES.md lists, in order."""
    genome = bua / "data" / "genome" / "1600-400-20"
    lvis = _literal(detectron2 / "detectron2" / "data" / "datasets" / "lvis_v1_categories.py",
                    "LVIS_CATEGORIES")
    return [
        ("Visual Genome attributes (bottom-up-attention 400)",
         _first_synonyms(genome / "attributes_vocab.txt")),
        ("DTD textures (CLIP prompts.md)",
         clip_prompt_classes(clip / "data" / "prompts.md")["DescribableTextures"]),
        ("SUN attributes (places365 labels_sunattribute.txt)",
         (places365 / "labels_sunattribute.txt").read_text(encoding="utf-8").splitlines()),
        ("Visual Genome objects (bottom-up-attention 1600)",
         _first_synonyms(genome / "objects_vocab.txt")),
        ("COCO panoptic categories (detectron2 builtin_meta)",
         _coco_panoptic(detectron2 / "detectron2" / "data" / "datasets" / "builtin_meta.py")),
        ("LVIS v1 categories (detectron2)", [c["name"] for c in lvis]),
        ("Places365 scenes (categories_places365.txt)",
         _places(places365 / "categories_places365.txt")),
    ]


def write(name: str, entries: list[str]) -> None:
    (OUT / name).write_text("\n".join(entries) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, required=True)
    parser.add_argument("--open-clip-metadata", type=Path, required=True)
    parser.add_argument("--bottom-up-attention", type=Path, required=True)
    parser.add_argument("--detectron2", type=Path, required=True)
    parser.add_argument("--places365", type=Path, required=True)
    args = parser.parse_args(argv)
    for filename, groups in (
            ("open_semantics.txt", open_semantics(args.clip, args.open_clip_metadata)),
            ("visual_concepts.txt", visual_concepts(args.clip, args.bottom_up_attention,
                                                    args.detectron2, args.places365))):
        entries, counts = dedupe(groups)
        write(filename, entries)
        print(f"{filename}: {len(entries)} entries")
        for label, (read, new) in counts.items():
            print(f"  {label}: {read} read, {new} new")


if __name__ == "__main__":
    main()
