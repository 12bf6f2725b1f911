"""The hf_zsl models: what ships to the Hub. Imports torch, transformers and peft only."""
