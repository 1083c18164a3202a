"""Write tests/data/legacy_minilm_kb.sqlite: a knowledge base made by dskit before
MiniLM moved to llama.cpp.

Until MiniLM ran on llama.cpp, dskit embedded knowledge bases with sentence-transformers (on
PyTorch) and stored the model as `all-minilm:l6-v2`. The tests open this file with today's
dskit to check that such a knowledge base is detected, still searches, and is renewed by
`dskit kb rebuild`. It must be made by that older dskit, with the `hf` extra installed:

    git archive efdbd4f dskit | tar -x -C /tmp/old-dskit   # main before MiniLM moved to llama.cpp
    PYTHONPATH=/tmp/old-dskit python scripts/make_legacy_kb.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "legacy_minilm_kb.sqlite"
NAME = "旧库"
TEXTS = {
    "tea.txt": "龙井是绿茶，产自杭州西湖一带，冲泡水温以八十度左右为宜。"
               "普洱茶越陈越香，应该放在通风干燥的地方。",
    "wall.txt": "长城东起山海关，西至嘉峪关。",
    "garden.md": "Tomatoes need at least six hours of direct sun a day. Irregular watering "
                 "causes blossom end rot.",
    "volcano.md": "Mount Etna is an active volcano on the east coast of Sicily.",
    "bread.md": "Feed the sourdough starter once a day with equal weights of flour and water.",
}


def main() -> int:
    """Build the knowledge base with the older dskit and copy its SQLite file to tests/data."""
    import dskit.embeddings
    from dskit.kb import KnowledgeBase

    if hasattr(dskit.embeddings, "LOCAL_NAME"):
        print("this is a dskit whose MiniLM runs on llama.cpp: run the older one (see the "
              "docstring)", file=sys.stderr)
        return 1
    home = Path(tempfile.mkdtemp())
    kb = KnowledgeBase(NAME, data_dir=home)
    for name, text in TEXTS.items():
        kb.add(text=text, name=name, progress=False)
    assert "torch" in sys.modules and kb.embed_model == "all-minilm:l6-v2"
    kb.close()
    shutil.copyfile(home / NAME / "kb.sqlite", OUT)
    shutil.rmtree(home)
    print(f"{OUT}: {len(TEXTS)} documents embedded by sentence-transformers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
