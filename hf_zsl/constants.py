"""Names the command line needs before anything heavy is imported (standard library only)."""

EMBEDDED_BASE = "embedded"
"""The tiny CLIP shipped in the package (``hf_zsl.modeling.modeling_base.EMBEDDED_BASE``, repeated here
because importing that module loads torch)."""

PROTOCOL_NAMES = ("fewshot", "base2new", "gzsl", "dg")
SHAPES = "shapes"
SHAPES_DOMAINS = {"hue_shift": "hue_shift", "warm_light": "warm"}
"""``--dataset shapes:<domain>``: the shapes world with every split (train, validation, test) under one
lighting of the world (``hf_zsl.shapes.LIGHTINGS``), by domain name (the few-shot suite's lighting tasks)."""
SHAPES_DOMAIN_PROTOCOLS = ("gzsl", "base2new")
"""The protocols a ``shapes:<domain>`` dataset exists for."""
FROM_RUN = "from-run"
"""``hf-zsl eval --shots`` when not given: the shots of the model's training run (``run.json``), else 16."""

# By default the demo runs zero-shot CLIP on every protocol (it fits the 3-minute budget on 2 CPU
# cores); trained methods chosen with --methods run on the few-shot suite with 4 shots, seed 1
# (about a minute each there). The README's results table has them all at 16 shots × 3 seeds.
DEMO_DEFAULT_METHODS = ("zeroshot",)
DEMO_TRAINED_PROTOCOLS = ("fewshot",)
DEMO_SHOTS = 4
