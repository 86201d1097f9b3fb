"""64-bit hashes as PostgreSQL stores them.

Nothing here imports Django: the import's reader child process uses it.
"""

from __future__ import annotations

_SIGNED = 1 << 63
_WRAP = 1 << 64


def signed64(value: int) -> int:
    """An unsigned 64-bit hash (XXH3) as the signed bigint with the same bits.

    PostgreSQL has no unsigned 64-bit type; values from 2**63 up wrap to negatives.
    """
    return value - _WRAP if value >= _SIGNED else value
