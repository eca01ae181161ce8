"""Semantic ids: residual-quantisation k-means (RQ-k-means) codebooks over content vectors.

Level 1 clusters the content vectors; each next level clusters what the previous levels left
(the residuals). A post's semantic id is its nearest centroid per level, as codes 1..K-1;
code 0 means "missing" (no content vector), so code tables have K rows with row 0 reserved.
Codebooks are fitted at training time on the training window's posts and saved next to the
checkpoint's parameters (`sid_codebook.npz`); assignment is a few small matrix products.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILE_NAME = "sid_codebook.npz"
MAX_FIT_POINTS = 20_000  # k-means is fitted on a sample of at most this many posts
ASSIGN_CHUNK = 2048  # rows per compiled assignment call; a smaller batch is padded to 256 or 2048


@dataclass(frozen=True)
class Codebook:
    centroids: np.ndarray  # [L, K-1, D] float32; code c (1..K-1) is centroids[level, c - 1]

    @property
    def levels(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def codes(self) -> int:
        """Rows of a code table: K-1 centroids plus the reserved 0."""
        return int(self.centroids.shape[1]) + 1

    def assign(self, vectors: np.ndarray) -> np.ndarray:
        """[N, D] -> [N, L] int32 codes; an all-zero vector (no content) gets all-zero codes.
        Nearest centroid per level (argmin |r - c|^2 = argmin |c|^2 - 2 r.c), in chunks padded
        to one of two widths, so that only two shapes are ever compiled."""
        x = np.asarray(vectors, np.float32)
        n = x.shape[0]
        out = np.zeros((n, self.levels), np.int32)
        for lo in range(0, n, ASSIGN_CHUNK):
            part = x[lo:lo + ASSIGN_CHUNK]
            width = 256 if part.shape[0] <= 256 else ASSIGN_CHUNK
            padded = np.zeros((width, x.shape[1]), np.float32)
            padded[:part.shape[0]] = part
            out[lo:lo + part.shape[0]] = np.asarray(self._assign_fn(padded))[:part.shape[0]]
        return out

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / FILE_NAME
        np.savez(path, centroids=self.centroids)
        return path

    @classmethod
    def load(cls, directory: str | Path) -> "Codebook | None":
        path = Path(directory) / FILE_NAME
        if not path.is_file():
            return None
        with np.load(path) as data:
            return cls(np.asarray(data["centroids"], np.float32))

    @functools.cached_property
    def fingerprint(self) -> int:
        """Identifies a codebook (to cache codes assigned with it); hashed once, not per lookup."""
        return hash(self.centroids.tobytes())

    @property
    def _assign_fn(self):
        return _compiled_assign(self)




_COMPILED: dict[int, object] = {}  # codebook fingerprint -> its compiled assignment (a few at most)


def _compiled_assign(book: Codebook):
    """The levels' nearest-centroid search as one compiled XLA function (fused: the [N, K-1]
    distances never leave it). Kept here, not on the codebook, so codebooks stay picklable."""
    fn = _COMPILED.get(book.fingerprint)
    if fn is not None:
        return fn
    import jax
    import jax.numpy as jnp

    centroids = jnp.asarray(book.centroids)
    sq = jnp.sum(centroids * centroids, axis=-1)

    def assign(x):
        residual, codes = x, []
        for level in range(book.levels):
            nearest = jnp.argmin(sq[level][None, :] - 2.0 * residual @ centroids[level].T, axis=1)
            codes.append(nearest + 1)
            residual = residual - centroids[level][nearest]
        present = jnp.any(x != 0, axis=1, keepdims=True)
        return jnp.where(present, jnp.stack(codes, axis=1), 0).astype(jnp.int32)

    while len(_COMPILED) >= 8:
        _COMPILED.pop(next(iter(_COMPILED)))
    fn = _COMPILED[book.fingerprint] = jax.jit(assign)
    return fn


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 20) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding: [k, D] centroids (fewer points than k: repeats)."""
    n = x.shape[0]
    if n == 0:
        return np.zeros((k, x.shape[1]), np.float32)
    sq_x = np.sum(x * x, axis=1)
    centroids = np.empty((k, x.shape[1]), np.float32)
    centroids[0] = x[rng.integers(n)]
    closest = np.sum((x - centroids[0]) ** 2, axis=1)
    for i in range(1, k):  # k-means++: sample proportional to the squared distance to the nearest centroid
        total = float(closest.sum())
        j = rng.integers(n) if total <= 0 else rng.choice(n, p=closest / total)
        centroids[i] = x[j]
        closest = np.minimum(closest, np.sum((x - centroids[i]) ** 2, axis=1))
    for _ in range(iterations):
        d = sq_x[:, None] - 2.0 * x @ centroids.T + np.sum(centroids * centroids, axis=1)[None, :]
        labels = np.argmin(d, axis=1)
        counts = np.bincount(labels, minlength=k).astype(np.float32)
        sums = np.zeros_like(centroids)
        np.add.at(sums, labels, x)
        moved = counts > 0
        new = centroids.copy()
        new[moved] = sums[moved] / counts[moved, None]
        if np.allclose(new, centroids, atol=1e-6):
            centroids = new
            break
        centroids = new
    return centroids


def fit_codebook(vectors: np.ndarray, levels: int, codes: int, seed: int = 0) -> Codebook:
    """RQ-k-means over the posts' content vectors (zero vectors, i.e. no content, are left out)."""
    if levels < 1 or codes < 2:
        raise ValueError("semantic ids need levels >= 1 and codes >= 2")
    x = np.asarray(vectors, np.float32)
    x = x[np.any(x != 0, axis=1)]
    rng = np.random.default_rng(seed)
    if x.shape[0] > MAX_FIT_POINTS:
        x = x[rng.choice(x.shape[0], MAX_FIT_POINTS, replace=False)]
    residual = x.copy()
    books = []
    for _ in range(levels):
        c = kmeans(residual, codes - 1, rng)
        books.append(c)
        if residual.shape[0]:
            nearest = np.argmin(np.sum(c * c, axis=1)[None, :] - 2.0 * residual @ c.T, axis=1)
            residual = residual - c[nearest]
    return Codebook(np.stack(books).astype(np.float32))
