"""How each trained method is fitted on a protocol's training view (one module per method)."""
