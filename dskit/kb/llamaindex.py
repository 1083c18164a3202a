"""llama-index adapters: a dskit embedder as a llama-index embedding, a KB as a retriever."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from pydantic import PrivateAttr

if TYPE_CHECKING:
    from ..embeddings import Embedder
    from .knowledge import KnowledgeBase


class LlamaEmbedding(BaseEmbedding):
    """Any dskit embedder (local MiniLM, Ollama) where llama-index wants an `embed_model`."""

    _embedder: Any = PrivateAttr()

    def __init__(self, embedder: Embedder, **kwargs: Any) -> None:
        super().__init__(model_name=embedder.name, **kwargs)
        self._embedder = embedder

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed([query])[0].tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.embed([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed(texts).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


class KBRetriever(BaseRetriever):
    """A knowledge base's hybrid search as a llama-index retriever."""

    def __init__(self, kb: KnowledgeBase, k: int = 6, threshold: float = 0.0) -> None:
        super().__init__()
        self.kb, self.k, self.threshold = kb, k, threshold

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.kb.search(query_bundle.query_str, k=self.k, threshold=self.threshold)
        return [NodeWithScore(node=TextNode(
            text=r.text, id_=f"{r.doc_id}#{r.chunk_id}",
            metadata={"source": r.source, "location": r.location, "doc_id": r.doc_id}),
            score=float(r.score)) for r in hits.itertuples()]
