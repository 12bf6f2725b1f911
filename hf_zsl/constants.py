"""Names and defaults the command line needs before anything heavy is imported (standard library only)."""

EMBEDDED_BASE = "embedded"
"""The tiny CLIP shipped in the package (``hf_zsl.modeling.modeling_base.EMBEDDED_BASE``, repeated here
because importing that module loads torch)."""
EMBEDDED_BASES = (EMBEDDED_BASE, "embedded-siglip")
"""Every base shipped in the package: the tiny CLIP and the tiny SigLIP (``modeling_base.EMBEDDED_FOLDERS``'s
names, repeated here for the same reason)."""

PROTOCOL_NAMES = ("fewshot", "base2new", "gzsl", "dg")
SHAPES = "shapes"
SHAPES_DOMAINS = {"hue_shift": "hue_shift", "warm_light": "warm"}
"""``--dataset shapes:<domain>``: the shapes world with every split (train, validation, test) under one
lighting of the world (``hf_zsl.shapes.LIGHTINGS``), by domain name (the few-shot suite's lighting tasks)."""
SHAPES_DOMAIN_PROTOCOLS = ("gzsl", "base2new")
"""The protocols a ``shapes:<domain>`` dataset exists for."""
ALL_SHOTS = "all"
"""``--shots all`` (a recipe's ``shots: all``): every training image (``None`` in the Python API)."""
PROTOCOL_SHOTS = {"fewshot": 16, "base2new": 16, "gzsl": None, "dg": 16}
"""Labelled images per (training) class when no shots are given, by protocol: every training image for gzsl
(the GZSL papers'), 16 per base class for base2new (CoCoOp's), 16 per class for fewshot and dg (CoOp's)."""
FROM_RUN = "from-run"
"""``hf-zsl eval --shots`` when not given: the shots of the model's training run (``run.json``), else the
protocol's (:data:`PROTOCOL_SHOTS`)."""

# By default the demo runs zero-shot CLIP on every protocol (it fits the 3-minute budget on 2 CPU
# cores); trained methods chosen with --methods run on the few-shot suite with 4 shots, seed 1
# (about a minute each there). The README's results table has them all at 16 shots × 3 seeds.
DEMO_DEFAULT_METHODS = ("zeroshot",)
DEMO_TRAINED_PROTOCOLS = ("fewshot",)
DEMO_SHOTS = 4


def protocol_shots(protocol: str, shots: int | str | None) -> int | None:
    """The images per class a run of ``protocol`` trains on, as the Python API takes them (``None``: all).

    Args:
        shots: a count, :data:`ALL_SHOTS`, or ``None`` (not given: the protocol's :data:`PROTOCOL_SHOTS`).

    Raises:
        ValueError: for a protocol not in :data:`PROTOCOL_NAMES`.
    """
    if protocol not in PROTOCOL_SHOTS:
        raise ValueError(f"Unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOL_NAMES)}.")
    if shots is None:
        return PROTOCOL_SHOTS[protocol]
    return None if shots == ALL_SHOTS else shots
