"""The content-only baseline: the cosine between the mean content vector of the user's
history and the candidate's content vector. It knows nothing of ids or popularity, only what
the posts say, so it shows how much a text model alone gets.

Vectors come from any `embed(texts) -> [len(texts), D]` callable; the default is wordllama's
256-d `l2_supercat`, loaded from the files inside its wheel with nothing downloaded (its
loader looks for the tokenizer under `tokenizer/` while the wheel ships `tokenizers/`, so the
files are opened directly here)."""
from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

Embed = Callable[[Sequence[str]], np.ndarray]


def wordllama_embed() -> Embed:
    """embed(texts) with wordllama's packaged weights and tokenizer, offline."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the content baseline needs wordllama (pip install wordllama)")
    from safetensors import safe_open
    from wordllama import WordLlama
    from wordllama.inference import WordLlamaInference

    root = Path(list(spec.submodule_search_locations)[0])
    tokenizer = WordLlama.load_tokenizer(root / "tokenizers" / "l2_supercat_tokenizer_config.json")
    with safe_open(str(root / "weights" / "l2_supercat_256.safetensors"), framework="np", device="cpu") as f:
        table = f.get_tensor("embedding.weight")
    model = WordLlamaInference(table, tokenizer, binary=False)
    return lambda texts: np.asarray(model.embed(list(texts), norm=True), np.float32)


class ContentVectors:
    """Unit content vectors of posts, embedded once from their texts (missing text: zeros)."""

    def __init__(self, texts: dict[int, str], embed: Embed, batch: int = 2048) -> None:
        ids = list(texts)
        parts = [np.asarray(embed([texts[p] or "" for p in ids[lo:lo + batch]]), np.float32)
                 for lo in range(0, len(ids), batch)]
        vectors = np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.vectors = np.where(norms > 0, vectors / np.maximum(norms, 1e-12), 0.0).astype(np.float32)
        self.dim = self.vectors.shape[1]
        self._row = {p: i for i, p in enumerate(ids)}

    def of(self, post_ids) -> np.ndarray:
        out = np.zeros((len(post_ids), self.dim), np.float32)
        for i, p in enumerate(post_ids):
            r = self._row.get(int(p))
            if r is not None:
                out[i] = self.vectors[r]
        return out

    def user(self, history_post_ids) -> np.ndarray:
        """Unit mean of the history's vectors (zeros for an empty history)."""
        v = self.of(history_post_ids).mean(axis=0) if len(history_post_ids) else np.zeros(self.dim, np.float32)
        n = float(np.linalg.norm(v))
        return v / n if n > 0 else v


def ranker_content_scores(vectors: ContentVectors, test) -> np.ndarray:
    """[N test candidates] cosine of each candidate with its example's history mean."""
    out = []
    for i in range(len(test)):  # a RankExamples table (phoenix/training/data.py)
        u = vectors.user(test.history.post[test.lo[i]:test.hi[i]].tolist())
        out.append(vectors.of(test.post[test.offsets[i]:test.offsets[i + 1]].tolist()) @ u)
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def retrieval_content_scorer(vectors: ContentVectors, corpus_ids: np.ndarray, seen) -> Callable:
    """fn(queries) -> [Q, corpus] cosine of the corpus with the mean of everything the user
    engaged with before the query."""
    corpus = vectors.of(corpus_ids)

    def scores(queries) -> np.ndarray:
        users = np.stack([vectors.user(seen.before(q.user_id, q.time_ms)) for q in queries])
        return users @ corpus.T
    return scores
