"""The client's impression bloom filters (home_mixer.proto `ImpressionBloomFilter`).

Bit i of `num_bits` lives in byte i // 8 at position i % 8 (little-endian within a byte).
An id sets the bits (h1 + j * h2) mod num_bits for j < num_hashes, where h1 and h2 are the
first and second little-endian uint64 of blake2b(id as 8 little-endian bytes, 16-byte digest).
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from foryou_protos import home_mixer_pb2

MAX_BLOOM_BITS = 1 << 20  # 128 KiB per filter: ~100k ids at a 1% false-positive rate
MAX_BLOOM_HASHES = 32


def id_hashes(post_id: int) -> tuple[int, int]:
    """(h1, h2) of an id; the same for every filter, so compute it once per id."""
    digest = hashlib.blake2b(int(post_id).to_bytes(8, "little"), digest_size=16).digest()
    return int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little")


def _bit_indices(hashes: tuple[int, int], num_bits: int, num_hashes: int) -> list[int]:
    h1, h2 = hashes
    return [(h1 + j * h2) % num_bits for j in range(num_hashes)]


@dataclass(frozen=True)
class ImpressionBloomFilter:
    bits: bytes
    num_bits: int
    num_hashes: int

    def __post_init__(self) -> None:
        if not 0 < self.num_bits <= MAX_BLOOM_BITS:
            raise ValueError(f"num_bits must be in [1, {MAX_BLOOM_BITS}], got {self.num_bits}")
        if not 0 < self.num_hashes <= MAX_BLOOM_HASHES:
            raise ValueError(f"num_hashes must be in [1, {MAX_BLOOM_HASHES}], got {self.num_hashes}")
        if len(self.bits) * 8 < self.num_bits:
            raise ValueError(f"bits holds {len(self.bits) * 8} bits, fewer than num_bits {self.num_bits}")

    def may_contain(self, post_id: int) -> bool:
        """False: certainly never added. True: added, or a false positive."""
        return self.may_contain_hashes(id_hashes(post_id))

    def may_contain_hashes(self, hashes: tuple[int, int]) -> bool:
        return all(self.bits[i >> 3] >> (i & 7) & 1 for i in _bit_indices(hashes, self.num_bits, self.num_hashes))

    @classmethod
    def build(cls, post_ids: Iterable[int], num_bits: int = 8192, num_hashes: int = 4) -> "ImpressionBloomFilter":
        """What a client does: a filter holding `post_ids`."""
        bits = bytearray((num_bits + 7) // 8)
        for post_id in post_ids:
            for i in _bit_indices(id_hashes(post_id), num_bits, num_hashes):
                bits[i >> 3] |= 1 << (i & 7)
        return cls(bytes(bits), num_bits, num_hashes)

    @classmethod
    def from_proto(cls, message: home_mixer_pb2.ImpressionBloomFilter) -> "ImpressionBloomFilter":
        return cls(bytes(message.bits), message.num_bits, message.num_hashes)

    def to_proto(self) -> home_mixer_pb2.ImpressionBloomFilter:
        return home_mixer_pb2.ImpressionBloomFilter(bits=self.bits, num_bits=self.num_bits, num_hashes=self.num_hashes)
