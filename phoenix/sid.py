"""Semantic ids: residual-quantisation k-means (RQ-k-means) codebooks over content vectors.

Level 1 clusters the content vectors; each next level clusters what the previous levels left
(the residuals). A post's semantic id is its nearest centroid per level, as codes 1..K-1;
code 0 means "missing" (no content vector), so code tables have K rows with row 0 reserved.
Codebooks are fitted at training time on the training window's posts and saved next to the
checkpoint's parameters (`sid_codebook.npz`); assignment is a few small matrix products.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILE_NAME = "sid_codebook.npz"
MAX_FIT_POINTS = 20_000  # k-means is fitted on a sample of at most this many posts
ASSIGN_CHUNK = 8192


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
        """[N, D] -> [N, L] int32 codes; an all-zero vector (no content) gets all-zero codes."""
        x = np.asarray(vectors, np.float32)
        out = np.zeros((x.shape[0], self.levels), np.int32)
        sq = np.sum(self.centroids * self.centroids, axis=-1)  # [L, K-1]
        for lo in range(0, x.shape[0], ASSIGN_CHUNK):
            residual = x[lo:lo + ASSIGN_CHUNK].copy()
            present = np.any(residual != 0, axis=1)
            for level in range(self.levels):
                c = self.centroids[level]
                # argmin |r - c|^2 = argmin (|c|^2 - 2 r.c)
                nearest = np.argmin(sq[level][None, :] - 2.0 * residual @ c.T, axis=1)
                out[lo:lo + residual.shape[0], level] = nearest + 1
                residual -= c[nearest]
            out[lo:lo + residual.shape[0]][~present] = 0
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

    @property
    def fingerprint(self) -> int:
        """Identifies a codebook (to cache codes assigned with it)."""
        return hash(self.centroids.tobytes())


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
