"""Code the documentation refers to: a custom serializer for the guide."""

from __future__ import annotations

import json
import zlib
from typing import Any


class CompressedJSONSerializer:
    """JSON, compressed with zlib: for large, repetitive values."""

    # Stored in every row this serializer writes; choose a name of your own,
    # and never change it while rows written under it exist.
    name = "json-zlib"

    def dumps(self, value: Any) -> bytes:
        """Return the compressed JSON of ``value``."""
        return zlib.compress(json.dumps(value, separators=(",", ":")).encode())

    def loads(self, data: bytes) -> Any:
        """Return the value that :meth:`dumps` compressed into ``data``."""
        return json.loads(zlib.decompress(data))
