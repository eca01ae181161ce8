"""Packed repeated protobuf fields written straight from numpy arrays.

Filling a repeated field from Python costs a conversion per element; a packed field of a
fixed-width type (fixed64, sfixed64, fixed32, float, double, and bool, one byte each) is the
array's little-endian bytes behind a tag and a length. `message.MergeFromString(packed(...))`
appends them at C speed; reading back, `np.asarray(message.field)` is a buffer copy."""
from __future__ import annotations

import numpy as np


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def packed(field_number: int, values: np.ndarray) -> bytes:
    """Wire bytes of a packed repeated field holding `values` (its dtype must match the
    field's: int64/uint64 for (s)fixed64, uint32 for fixed32, float32 for float, bool)."""
    values = np.ascontiguousarray(values)
    if values.dtype == np.bool_:
        values = values.view(np.uint8)
    data = values.astype(values.dtype.newbyteorder("<"), copy=False).tobytes()
    if not data:
        return b""
    return _varint(field_number << 3 | 2) + _varint(len(data)) + data


def field_number(message_type, name: str) -> int:
    return message_type.DESCRIPTOR.fields_by_name[name].number


# A bytes field of little-endian float16 (protobuf has no 16-bit float): half a float field's size.
FLOAT16_WIRE = np.dtype("<f2")


def float16_bytes(values: np.ndarray) -> bytes:
    """`values` as the bytes of a little-endian float16 field (values float16 holds are kept exactly)."""
    return np.ascontiguousarray(values, FLOAT16_WIRE).tobytes()


def float16_rows(data: bytes, width: int) -> np.ndarray:
    """A float16 bytes field back as float32 rows [len / width, width]; ValueError if it does not split."""
    values = np.frombuffer(data, FLOAT16_WIRE)
    if width <= 0 or len(values) % width:
        raise ValueError(f"{len(values)} float16 values do not make rows of {width}")
    return values.astype(np.float32).reshape(-1, width)
