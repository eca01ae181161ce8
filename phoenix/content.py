"""Content vectors: every post's text -> a 256-d unit vector, and the store that keeps them.

The encoder is `wordllama` (a static token-embedding model, mean-pooled) with its `l2_supercat`
weights at 256 dimensions, which ship inside the wheel together with the tokenizer. Its loader
looks for the tokenizer under `<package>/tokenizer/` while the wheel installs it under
`<package>/tokenizers/`; pointing its cache directory at the installed package finds both files
there (`<cache>/weights/`, `<cache>/tokenizers/`), and downloads stay disabled, so nothing is
ever fetched (tests/phoenix_model/test_content.py loads it with the network refused).

`ContentStore` maps post id -> content vector (float16, so a million posts take 0.5 GB) for
the posts Phoenix has ingested, and each post's kind and media codes (phoenix/post_kind.py).
A repost takes the vector of its original (its text is the original's wrapped in "RT @handle:";
the store looks the original up when it has it), and, when it has no media of its own, the
original's photo and video codes (the Post of a repost may carry no media: the foryou world's
do not, Thunder passes a repost's own fields); its kind stays "repost".
"""
from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse

from phoenix.post_kind import PHOTO, VIDEO, has_media
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


class _ChunkCache:
    """wordllama's mean pooling, computed from cached per-chunk sums.

    The tokenizer (Llama's SentencePiece BPE) turns every space into "▁" and prepends one,
    and no token spans a "▁" inside a chunk, so a text's tokens are the concatenation of its
    space-separated chunks' tokens (texts with runs of spaces, or spaces at their ends, are kept
    whole: BPE merges runs of "▁").
    Posts repeat words, so each distinct chunk is tokenized once and its token-embedding sum
    and token count are kept; a text's vector is the sum of its chunks' sums over the total
    count: the same mean wordllama's `embed` computes (tests/phoenix_model/test_content.py
    checks equality), at a fraction of the tokenizer's cost per post. The per-text sums are one
    sparse product (texts x chunks) @ chunk sums, and a batch is split with one join and one
    split, so the Python work per post is a few dictionary lookups."""

    MAX_CHUNKS = 500_000  # distinct chunks kept; the cache starts over beyond this

    def __init__(self, model) -> None:
        from tokenizers import Tokenizer

        self._embedding = np.asarray(model.embedding, np.float32)
        self._tokenizer = Tokenizer.from_str(model.tokenizer.to_str())  # own copy: no padding
        self._tokenizer.no_padding()
        self._reset()
        self._lock = threading.Lock()

    def _reset(self) -> None:
        self._index: dict[str, int] = {}
        self._sums = np.zeros((1024, CONTENT_DIM), np.float32)
        self._counts = np.zeros(1024, np.float32)

    def _add(self, chunks: list[str]) -> None:
        # (never an empty chunk: mean_pool keeps texts with runs of spaces whole)
        tokens = [e.ids for e in self._tokenizer.encode_batch(chunks, add_special_tokens=False)]
        n = len(self._index)
        need = n + len(chunks)
        if need > self._sums.shape[0]:
            cap = max(need, 2 * self._sums.shape[0])
            self._sums = np.concatenate([self._sums, np.zeros((cap - self._sums.shape[0], CONTENT_DIM), np.float32)])
            self._counts = np.concatenate([self._counts, np.zeros(cap - self._counts.shape[0], np.float32)])
        lengths = np.fromiter(map(len, tokens), np.int64, len(tokens))
        flat = np.fromiter(itertools.chain.from_iterable(tokens), np.int64, int(lengths.sum()))
        flat = np.clip(flat, 0, self._embedding.shape[0] - 1)
        self._sums[n:need] = _segment_sums(self._embedding, flat, lengths)
        self._counts[n:need] = lengths
        self._index.update(zip(chunks, range(n, need)))

    def _rows(self, chunks: list[str]) -> np.ndarray:
        """Cache rows of the chunks (tokenizing the new ones); call under the lock."""
        new = set(chunks).difference(self._index.keys())
        if new:
            self._add(list(new))
        return np.fromiter(map(self._index.__getitem__, chunks), np.int64, len(chunks))

    def mean_pool(self, texts: Sequence[str]) -> np.ndarray:
        """[N, 256] unnormalised mean token embeddings (texts must be non-empty). A text with
        runs of spaces or spaces at its ends is kept whole (BPE merges runs of "▁")."""
        n = len(texts)
        whole = [i for i, t in enumerate(texts) if "  " in t or t[0] == " " or t[-1] == " "]
        if whole:
            plain = np.ones(n, bool)
            plain[whole] = False
            split_texts = [t for t, ok in zip(texts, plain) if ok]
        else:
            split_texts = list(texts)
        # One join and one split in C instead of a Python loop per text: a text of k spaces
        # has k + 1 chunks.
        chunks = " ".join(split_texts).split(" ") if split_texts else []
        lengths = np.fromiter((t.count(" ") + 1 for t in split_texts), np.int64, len(split_texts))
        with self._lock:
            if len(self._index) > self.MAX_CHUNKS:
                self._reset()
            rows = self._rows(chunks)
            whole_rows = self._rows([texts[i] for i in whole]) if whole else None
            sums, counts = self._sums, self._counts
        out = np.empty((n, CONTENT_DIM), np.float32)
        totals = _segment_sums(sums, rows, lengths)
        token_counts = _segment_sums(counts[:, None], rows, lengths)[:, 0]
        pooled = totals / np.maximum(token_counts, 1.0)[:, None]
        if whole:
            out[plain] = pooled
            out[whole] = sums[whole_rows] / np.maximum(counts[whole_rows], 1.0)[:, None]
        else:
            out[:] = pooled
        return out


def _segment_sums(table: np.ndarray, rows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """[len(lengths), D]: per segment (consecutive `lengths` entries of `rows`), the sum of its
    rows of `table`, as one sparse [segments, table rows] x [table rows, D] product (no
    [len(rows), D] gather)."""
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    select = scipy.sparse.csr_matrix((np.ones(len(rows), np.float32), rows, indptr),
                                     shape=(len(lengths), table.shape[0]))
    return np.asarray(select @ table, np.float32)


@functools.lru_cache(maxsize=1)
def _chunks() -> _ChunkCache:
    return _ChunkCache(_model())


def encode_texts(texts: Sequence[str]) -> np.ndarray:
    """[N, 256] float32 unit vectors; an empty text gets a zero vector (= "no content")."""
    n = len(texts)
    out = np.zeros((n, CONTENT_DIM), np.float32)
    present = [i for i, t in enumerate(texts) if t and t.strip()]
    if not present:
        return out
    cache = _chunks()
    for lo in range(0, len(present), ENCODE_BATCH):
        rows = present[lo:lo + ENCODE_BATCH]
        vectors = cache.mean_pool([texts[i] for i in rows])
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        ok = norms[:, 0] > 1e-9
        out[np.asarray(rows)[ok]] = vectors[ok] / norms[ok]
    return out


class ContentStore:
    """Thread-safe post id -> content vector (a growable float16 matrix and a free-slot list),
    plus each registered codebook's semantic ids of every stored post, assigned on arrival (so
    serving reads codes instead of computing nearest centroids per request)."""

    def __init__(self, initial_capacity: int = 1024) -> None:
        self._vectors = np.zeros((max(1, initial_capacity), CONTENT_DIM), np.float16)
        self._kinds = np.zeros((self._vectors.shape[0], 3), np.int8)  # post_kind codes, 0 = missing
        self._slot: dict[int, int] = {}
        self._free: list[int] = []
        self._high = 0
        self._codes: dict[int, tuple[Codebook, np.ndarray]] = {}  # fingerprint -> (codebook, [cap, L])
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._slot)

    def _slots(self, ids: np.ndarray) -> np.ndarray:
        """Slots of uint64 post ids, -1 for unknown ones (call under the lock)."""
        return np.fromiter(map(self._slot.get, ids.tolist(), itertools.repeat(-1)), np.int64, len(ids))

    def __contains__(self, post_id: int) -> bool:
        return int(post_id) in self._slot

    def _grow(self, need: int) -> None:
        cap = self._vectors.shape[0]
        if need > cap:
            new_cap = max(need, 2 * cap)
            bigger = np.zeros((new_cap, CONTENT_DIM), np.float16)
            bigger[:self._high] = self._vectors[:self._high]
            self._vectors = bigger
            kinds = np.zeros((new_cap, 3), np.int8)
            kinds[:self._high] = self._kinds[:self._high]
            self._kinds = kinds
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
            slots = self._slots(ids)
            out = codes[np.maximum(slots, 0)].astype(np.int32)
        out[slots < 0] = 0
        return out

    def put(self, post_ids: Sequence[int], vectors: np.ndarray, kinds: np.ndarray | None = None) -> None:
        """Store vectors and, when given, post_kind codes [N, 3] (else the posts' are missing)."""
        vectors = np.asarray(vectors, np.float32).reshape(len(post_ids), CONTENT_DIM)
        kinds = np.zeros((len(post_ids), 3), np.int8) if kinds is None else np.asarray(kinds, np.int8)
        ids = [int(p) for p in post_ids]
        # Codes are assigned outside the lock (readers are not held up meanwhile).
        codes = {fp: book.assign(vectors) for fp, (book, _) in list(self._codes.items())}
        with self._lock:
            slots = np.fromiter(map(self._slot.get, ids, itertools.repeat(-1)), np.int64, len(ids))
            for i in np.flatnonzero(slots < 0):
                pid = ids[i]
                slot = self._slot.get(pid)  # a repeated id in the same batch
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
            self._kinds[slots] = kinds
            for fp, (book, table) in self._codes.items():  # (one registered meanwhile: assigned here)
                table[slots] = codes[fp] if fp in codes else book.assign(vectors)

    def add_posts(self, post_ids: Sequence[int], texts: Sequence[str],
                  repost_of: Sequence[int] | None = None, kinds: np.ndarray | None = None) -> np.ndarray:
        """Encode and store a batch of posts, with their own post_kind codes `kinds` [N, 3] when
        given; a repost whose original is known (stored, or earlier in this batch) takes the
        original's vector, and its media codes when it has none. Returns the [N, 256] vectors."""
        vectors = encode_texts(texts)
        kinds = None if kinds is None else np.array(kinds, np.int8).reshape(len(post_ids), 3)
        if repost_of is not None:
            in_batch = {int(p): i for i, p in enumerate(post_ids)}
            for i, original in enumerate(repost_of):
                original = int(original)
                if not original:
                    continue
                j = in_batch.get(original)
                if j is not None and j < i:
                    vectors[i], media = vectors[j], None if kinds is None else kinds[j]
                elif original in self:
                    vectors[i], media = self.get([original])[0], self.kinds([original])[0]
                else:
                    continue
                if kinds is not None and media is not None and not has_media(kinds[i]):
                    kinds[i, [PHOTO, VIDEO]] = media[[PHOTO, VIDEO]]
        self.put(post_ids, vectors, kinds)
        return vectors

    def kinds(self, post_ids) -> np.ndarray:
        """[N, 3] int32 post_kind codes (phoenix/post_kind.py); zeros (missing) for unknown posts."""
        return self._rows("_kinds", post_ids, np.int32)

    def get(self, post_ids) -> np.ndarray:
        """[N, 256] float32 vectors; zeros for unknown posts (and for post id 0, padding)."""
        return self._rows("_vectors", post_ids, np.float32)

    def _rows(self, table: str, post_ids, dtype) -> np.ndarray:
        """Rows of one per-slot table (read under the lock: `put` may grow it) as `dtype`; zeros
        for unknown posts."""
        ids = np.asarray(post_ids, np.uint64).reshape(-1)
        with self._lock:
            slots = self._slots(ids)
            out = getattr(self, table)[np.maximum(slots, 0)].astype(dtype)
        out[slots < 0] = 0
        return out

    def remove(self, post_ids) -> None:
        with self._lock:
            for pid in post_ids:
                slot = self._slot.pop(int(pid), None)
                if slot is not None:
                    self._vectors[slot] = 0
                    self._kinds[slot] = 0
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
    """What a model reads per post (phoenix.features.PostFeatures): the store's content vectors,
    the semantic ids of the model's own codebook and the post_kind codes."""

    def __init__(self, store: ContentStore, codebook: Codebook | None) -> None:
        self.store = store
        self.codebook = codebook
        if codebook is not None:
            store.register(codebook)

    def content(self, post_ids: np.ndarray) -> np.ndarray:
        return self.store.get(post_ids)

    def sids(self, post_ids: np.ndarray) -> np.ndarray | None:
        return None if self.codebook is None else self.store.sids(post_ids, self.codebook)

    def kinds(self, post_ids: np.ndarray) -> np.ndarray:
        return self.store.kinds(post_ids)
