"""Model card templates, one Markdown file per method, rendered by ``hf_zsl.cards``."""
