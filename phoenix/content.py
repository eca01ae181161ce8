"""Content vectors: every post's text -> a 256-d unit vector, and the store that keeps them.

The encoder is `wordllama` (a static token-embedding model, mean-pooled) with its `l2_supercat`
weights at 256 dimensions, which ship inside the wheel together with the tokenizer. Its loader
looks for the tokenizer under `<package>/tokenizer/` while the wheel installs it under
`<package>/tokenizers/`; pointing its cache directory at the installed package finds both files
there (`<cache>/weights/`, `<cache>/tokenizers/`), and downloads stay disabled, so nothing is
ever fetched (tests/phoenix_model/test_content.py loads it with the network refused).

`ContentStore` maps post id -> content vector (float16, so a million posts take 0.5 GB) for
the posts Phoenix has ingested. A repost takes the vector of its original (its text is the
original's wrapped in "RT @handle:"; the store looks the original up when it has it).
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from phoenix.sid import Codebook

CONTENT_DIM = 256
MAX_CODEBOOKS = 4  # codebooks whose codes the store keeps (ranker + retriever, and one reload each)
WORDLLAMA_CONFIG = "l2_supercat"
ENCODE_BATCH = 4096  # texts per wordllama call: large batches amortise the tokenizer's overhead


@functools.lru_cache(maxsize=1)
def _model():
    import wordllama
    from wordllama import WordLlama

    package = Path(wordllama.__file__).parent
    return WordLlama.load(WORDLLAMA_CONFIG, dim=CONTENT_DIM, cache_dir=package, disable_download=True)


def encode_texts(texts: Sequence[str]) -> np.ndarray:
    """[N, 256] float32 unit vectors; an empty text gets a zero vector (= "no content")."""
    n = len(texts)
    out = np.zeros((n, CONTENT_DIM), np.float32)
    if n == 0:
        return out
    model = _model()
    texts = [t or "" for t in texts]
    for lo in range(0, n, ENCODE_BATCH):
        part = texts[lo:lo + ENCODE_BATCH]
        vectors = np.asarray(model.embed(part, norm=False, batch_size=len(part)), np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        ok = (norms[:, 0] > 1e-9) & np.fromiter((bool(t.strip()) for t in part), bool, len(part))
        out[lo:lo + len(part)][ok] = vectors[ok] / norms[ok]
    return out


class ContentStore:
    """Thread-safe post id -> content vector (a growable float16 matrix and a free-slot list),
    plus each registered codebook's semantic ids of every stored post, assigned on arrival (so
    serving reads codes instead of computing nearest centroids per request)."""

    def __init__(self, initial_capacity: int = 1024) -> None:
        self._vectors = np.zeros((max(1, initial_capacity), CONTENT_DIM), np.float16)
        self._slot: dict[int, int] = {}
        self._free: list[int] = []
        self._high = 0
        self._codes: dict[int, tuple[Codebook, np.ndarray]] = {}  # fingerprint -> (codebook, [cap, L])
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, post_id: int) -> bool:
        return int(post_id) in self._slot

    def _grow(self, need: int) -> None:
        cap = self._vectors.shape[0]
        if need > cap:
            new_cap = max(need, 2 * cap)
            bigger = np.zeros((new_cap, CONTENT_DIM), np.float16)
            bigger[:self._high] = self._vectors[:self._high]
            self._vectors = bigger
            for fp, (book, codes) in list(self._codes.items()):
                grown = np.zeros((new_cap, codes.shape[1]), codes.dtype)
                grown[:self._high] = codes[:self._high]
                self._codes[fp] = (book, grown)

    def register(self, codebook: Codebook) -> None:
        """Assign `codebook`'s codes to every stored post, and to every post added from now on."""
        with self._lock:
            fp = codebook.fingerprint
            if fp in self._codes:
                self._codes[fp] = self._codes.pop(fp)  # most recently used last
                return
            codes = np.zeros((self._vectors.shape[0], codebook.levels), np.int16)
            codes[:self._high] = codebook.assign(self._vectors[:self._high].astype(np.float32))
            self._codes[fp] = (codebook, codes)
            while len(self._codes) > MAX_CODEBOOKS:
                self._codes.pop(next(iter(self._codes)))

    def sids(self, post_ids, codebook: Codebook) -> np.ndarray:
        """[N, L] int32 codes of `codebook` (registered on first use); zeros for unknown posts."""
        ids = np.asarray(post_ids, np.uint64).reshape(-1)
        with self._lock:
            if codebook.fingerprint not in self._codes:
                self.register(codebook)
            codes = self._codes[codebook.fingerprint][1]
            slots = np.fromiter((self._slot.get(int(p), -1) for p in ids), np.int64, len(ids))
            out = codes[np.maximum(slots, 0)].astype(np.int32)
        out[slots < 0] = 0
        return out

    def put(self, post_ids: Sequence[int], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, np.float32).reshape(len(post_ids), CONTENT_DIM)
        with self._lock:
            slots = np.empty(len(post_ids), np.int64)
            for i, pid in enumerate(post_ids):
                pid = int(pid)
                slot = self._slot.get(pid)
                if slot is None:
                    if self._free:
                        slot = self._free.pop()
                    else:
                        self._grow(self._high + 1)
                        slot = self._high
                        self._high += 1
                    self._slot[pid] = slot
                slots[i] = slot
            self._vectors[slots] = vectors
            for book, codes in self._codes.values():
                codes[slots] = book.assign(vectors)

    def add_posts(self, post_ids: Sequence[int], texts: Sequence[str],
                  repost_of: Sequence[int] | None = None) -> np.ndarray:
        """Encode and store a batch of posts; a repost whose original is known (stored, or
        earlier in this batch) takes the original's vector. Returns the [N, 256] vectors."""
        vectors = encode_texts(texts)
        if repost_of is not None:
            in_batch = {int(p): i for i, p in enumerate(post_ids)}
            for i, original in enumerate(repost_of):
                original = int(original)
                if not original:
                    continue
                j = in_batch.get(original)
                if j is not None and j < i:
                    vectors[i] = vectors[j]
                elif original in self:
                    vectors[i] = self.get([original])[0]
        self.put(post_ids, vectors)
        return vectors

    def get(self, post_ids) -> np.ndarray:
        """[N, 256] float32 vectors; zeros for unknown posts (and for post id 0, padding)."""
        ids = np.asarray(post_ids, np.uint64).reshape(-1)
        with self._lock:
            slots = np.fromiter((self._slot.get(int(p), -1) for p in ids), np.int64, len(ids))
            out = self._vectors[np.maximum(slots, 0)].astype(np.float32)
        out[slots < 0] = 0.0
        return out

    def remove(self, post_ids) -> None:
        with self._lock:
            for pid in post_ids:
                slot = self._slot.pop(int(pid), None)
                if slot is not None:
                    self._vectors[slot] = 0
                    for _, codes in self._codes.values():
                        codes[slot] = 0
                    self._free.append(slot)

    def expire(self, now_ms: int, max_age_ms: int) -> int:
        """Drop posts created more than `max_age_ms` before `now_ms` (age read from the id)."""
        from foryou import snowflake
        ids = self.post_ids()
        created = (ids >> np.uint64(22)).astype(np.int64) + snowflake.TWITTER_EPOCH_MS
        old = ids[created < now_ms - max_age_ms]
        self.remove(old.tolist())
        return len(old)

    def post_ids(self) -> np.ndarray:
        with self._lock:
            return np.fromiter(self._slot.keys(), np.uint64, len(self._slot))


class PostFeatureView:
    """What a model reads per post (phoenix.features.PostFeatures): the store's content vectors
    and the semantic ids of the model's own codebook."""

    def __init__(self, store: ContentStore, codebook: Codebook | None) -> None:
        self.store = store
        self.codebook = codebook
        if codebook is not None:
            store.register(codebook)

    def content(self, post_ids: np.ndarray) -> np.ndarray:
        return self.store.get(post_ids)

    def sids(self, post_ids: np.ndarray) -> np.ndarray | None:
        return None if self.codebook is None else self.store.sids(post_ids, self.codebook)
