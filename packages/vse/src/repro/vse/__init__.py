"""repro.vse: MHSAN visual-semantic embedding (multi-head self-attention) and vsepp retrieval."""
