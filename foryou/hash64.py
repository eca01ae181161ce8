"""The 64-bit hashing constant shared by Thunder's id tables (Fibonacci hashing) and Phoenix's
embedding-bucket hash (splitmix64's increment)."""
from __future__ import annotations

import numpy as np

# 2**64 / the golden ratio, made odd: multiplying by it spreads ids whatever their low bits.
GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
