"""Named prompt-template sets (reference/methods.md §1: the few-shot literature's templates)."""

SINGLE = ["a photo of a {}."]

# The 7-template ImageNet ensemble of Tip-Adapter / CoOp follow-ups (selected from CLIP's 80).
IMAGENET_7 = [
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
]

TEMPLATE_SETS: dict[str, list[str]] = {
    "single": SINGLE,
    "imagenet7": IMAGENET_7,
    "pipeline": ["This is a photo of {}."],
    # Dataset-specific templates of the CoOp / Tip-Adapter 11-dataset suite.
    "caltech101": SINGLE,
    "stanford_cars": SINGLE,
    "sun397": SINGLE,
    "oxford_pets": ["a photo of a {}, a type of pet."],
    "oxford_flowers": ["a photo of a {}, a type of flower."],
    "fgvc_aircraft": ["a photo of a {}, a type of aircraft."],
    "dtd": ["{} texture."],
    "eurosat": ["a centered satellite photo of {}."],
    "food101": ["a photo of {}, a type of food."],
    "ucf101": ["a photo of a person doing {}."],
    "imagenet": IMAGENET_7,
    # GZSL benchmarks (DFZSL's templates).
    "awa2": ["a photo of a {}, a type of animal."],
    "cub": ["a photo of a {}, a type of bird in North America."],
    "sun": SINGLE,
    "apy": SINGLE,
    "flo": ["a photo of a {}, a type of flower."],
}


def resolve_templates(templates: str | list[str] | None) -> list[str] | None:
    """A list of templates from a set name (``"imagenet7"``), a single template string, or a list."""
    if templates is None or isinstance(templates, list):
        return templates
    if not isinstance(templates, str):
        raise TypeError(f"templates must be a set name, a template string or a list, got {type(templates).__name__}.")
    if "{}" in templates:
        return [templates]
    if templates not in TEMPLATE_SETS:
        raise ValueError(
            f"Unknown template set {templates!r}; known sets: {', '.join(sorted(TEMPLATE_SETS))}, "
            "or pass a template string containing '{}' or a list of them."
        )
    return list(TEMPLATE_SETS[templates])
