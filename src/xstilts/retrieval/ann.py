"""Search backends for mining at scale: exact, IVF, IVF-PQ and HNSW behind one interface.

:func:`xstilts.retrieval.knn.knn` holds both sides in memory and searches exactly, which is
right for evaluation sets. Mining web corpora needs three more things, all here:

* **bounded memory**: every backend reads its corpus and queries block by block (a block is
  normalised to float32 only while it is searched), so memory-mapped float16 arrays from
  :mod:`xstilts.embedding.stream` are never copied whole;
* **approximate indexes** (faiss ``IndexIVFFlat``, ``IndexIVFPQ``, ``IndexHNSWFlat``) whose
  search-time knob (``nprobe``, ``efSearch``) is tuned on a sample of the real queries until a
  target recall@k against exact search is met, and whose recall is then *measured* on a second,
  disjoint sample and reported: an approximate result without its recall is not a result;
* **GPU faiss** when faiss sees a GPU (exact and IVF; HNSW has no GPU version).

Every backend follows the conventions of :mod:`xstilts.retrieval.knn`: inner product (cosine on
normalised vectors), rows best first, ties to the lower corpus index. :class:`IndexedKnn` plugs
a backend into :func:`xstilts.retrieval.mining.mine` as its ``search``, so the margin code
exists once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from xstilts.errors import UsageError
from xstilts.retrieval.knn import Backend, _sort_rows, knn, knn_reduced, normalize

log = logging.getLogger(__name__)

INDEX_KINDS = ("exact", "ivf", "ivfpq", "hnsw")
SEARCH_DTYPES = ("fp32", "bf16", "fp16")
_KNOB = {"ivf": "nprobe", "ivfpq": "nprobe", "hnsw": "efSearch"}
# Rows per block are chosen so that one float32 block takes about this much memory.
DEFAULT_BLOCK_BYTES = 256 * 2**20


@dataclass(frozen=True)
class IndexSpec:
    """What index to build and how to search it.

    ``knob`` is ``nprobe`` (IVF) or ``efSearch`` (HNSW); None tunes it on a sample of the
    queries: the smallest power of two whose recall@k against exact search reaches
    ``target_recall``, capped where the approximate index stops being cheaper than exact search
    (IVF: a sixteenth of the lists, at least 16; HNSW: 1024). When the cap is reached first the
    search is done exactly (reported as ``fallback``): slower than hoped, never less accurate than
    asked. A given ``knob`` is used as is, whatever recall it reaches (and that is reported).
    """

    kind: str = "exact"
    nlist: int | None = None  # IVF lists; default about 4 * sqrt(n)
    knob: int | None = None
    target_recall: float = 0.95
    tune_sample: int = 500
    pq_m: int | None = None  # IVF-PQ sub-quantizers (bytes a vector); default d/4
    pq_refine: int = 8  # IVF-PQ: candidates per wanted neighbour, re-scored exactly
    hnsw_m: int = 32
    ef_construction: int = 80
    train_size: int | None = None  # IVF training sample; default 64 points per list
    gpu: bool | None = None  # None: use a GPU when faiss sees one
    backend: Backend = "auto"  # exact search on CPU: faiss IndexFlatIP or numpy products
    # exact search on CPU in reduced precision (knn_reduced: bf16 products, fp32 re-scoring);
    # a concrete dtype: the command line resolves "auto" (bf16 only where it is native)
    dtype: str = "fp32"
    block_bytes: int = DEFAULT_BLOCK_BYTES
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise UsageError(f"--index {self.kind!r}: choose one of {', '.join(INDEX_KINDS)}")
        if self.knob is not None and self.knob < 1:
            raise UsageError(f"--{_KNOB.get(self.kind, 'nprobe').lower()} must be >= 1")
        if self.nlist is not None and self.nlist < 1:
            raise UsageError("--nlist must be >= 1")
        if not 0 < self.target_recall <= 1:
            raise UsageError("--target-recall must be in (0, 1]")
        if self.dtype not in SEARCH_DTYPES:
            raise UsageError(
                f"--search-dtype {self.dtype!r}: choose one of {', '.join(SEARCH_DTYPES)}"
            )

    @property
    def approximate(self) -> bool:
        """Whether results may miss true neighbours (everything but ``exact``)."""
        return self.kind != "exact"

    def block_rows(self, dim: int) -> int:
        """Rows per block for vectors of ``dim`` float32 values."""
        return max(1, self.block_bytes // (4 * max(dim, 1)))


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    """Mean share of each row's exact top-k found among its approximate top-k (ids only).

    Both arrays are ``(n, k)``; ``-1`` (faiss's "no result") never matches. An exact tie at the
    k-th place resolved to another id counts as a miss, so this slightly underestimates.
    """
    a = np.asarray(approx_ids)
    e = np.asarray(exact_ids)
    if a.shape[0] != e.shape[0]:
        raise ValueError(f"row mismatch: {a.shape} vs {e.shape}")
    if e.size == 0:
        return 1.0
    hits = (e[:, :, None] == a[:, None, :]) & (e[:, :, None] >= 0)
    return float(hits.any(axis=2).sum() / e.size)


def _blocks(arr: np.ndarray, rows: int, norm: bool) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, float32 block)`` over the rows of ``arr``, normalised when asked."""
    for start in range(0, len(arr), rows):
        block = arr[start : start + rows]
        yield start, normalize(block) if norm else np.ascontiguousarray(block, dtype=np.float32)


def _faiss():
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def gpu_count() -> int:
    """GPUs faiss can use (0 with faiss-cpu, which has no ``get_num_gpus`` on some builds)."""
    faiss = _faiss()
    if faiss is None or not hasattr(faiss, "get_num_gpus"):
        return 0
    return int(faiss.get_num_gpus())


def _use_gpu(spec: IndexSpec) -> bool:
    if spec.gpu is None:
        return gpu_count() > 0
    if spec.gpu and gpu_count() == 0:
        raise UsageError("--gpu: faiss sees no GPU (install faiss-gpu and check CUDA)")
    return spec.gpu


def _merge_topk(
    best: tuple[np.ndarray, np.ndarray] | None, new: tuple[np.ndarray, np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the k best of two top-k lists per row (score descending, lower index on ties)."""
    if best is None:
        return new
    scores = np.concatenate([best[0], new[0]], axis=1)
    idx = np.concatenate([best[1], new[1]], axis=1)
    scores, idx = _sort_rows(scores, idx)
    return scores[:, :k], idx[:, :k]


class VectorIndex:
    """A searchable corpus; subclasses decide how (exact blocks, IVF, HNSW)."""

    kind = "base"

    def __init__(self, corpus: np.ndarray, spec: IndexSpec, *, norm: bool = True) -> None:
        if corpus.ndim != 2 or len(corpus) == 0:
            raise ValueError(f"corpus must be a non-empty 2-D array, got shape {corpus.shape}")
        self.corpus = corpus
        self.spec = spec
        self.norm = norm
        self.dim = int(corpus.shape[1])
        self.block = spec.block_rows(self.dim)
        self.build_s = 0.0
        self.tune_s = 0.0
        self.gpu = False

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)`` of shape ``(len(queries), min(k, len(corpus)))``, best first."""
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"shape mismatch: queries {queries.shape}, corpus {self.corpus.shape}")
        k = min(k, len(self.corpus))
        scores = np.empty((len(queries), k), dtype=np.float32)
        ids = np.empty((len(queries), k), dtype=np.int64)
        for start, q in _blocks(queries, self.block, self.norm):
            scores[start : start + len(q)], ids[start : start + len(q)] = self._search_block(q, k)
        return scores, ids

    def _search_block(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Settings and costs for the results file."""
        info = {"kind": self.kind, "n": len(self.corpus), "gpu": self.gpu}
        if self.kind == "exact" and not self.gpu:
            info["dtype"] = self.spec.dtype
        return info


class ExactIndex(VectorIndex):
    """Exact search over corpus blocks (faiss ``IndexFlatIP``, GPU when present, or numpy; with
    ``dtype`` bf16/fp16 on CPU, :func:`xstilts.retrieval.knn.knn_reduced`).

    The corpus is never held whole: each block is normalised, searched for every query block,
    and the per-block top-k lists are merged. With one corpus block (the usual case below
    ~170k x 384 vectors) the result is exactly :func:`xstilts.retrieval.knn.knn`'s.
    """

    kind = "exact"

    def __init__(self, corpus: np.ndarray, spec: IndexSpec, *, norm: bool = True) -> None:
        super().__init__(corpus, spec, norm=norm)
        self.gpu = _use_gpu(spec)
        self._gpu_res = _faiss().StandardGpuResources() if self.gpu else None

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Corpus blocks outside, query blocks inside: the corpus is read once."""
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"shape mismatch: queries {queries.shape}, corpus {self.corpus.shape}")
        k = min(k, len(self.corpus))
        best: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for c_start, c in _blocks(self.corpus, self.block, self.norm):
            search = self._block_search(c, min(k, len(c)))
            for q_start, q in _blocks(queries, self.block, self.norm):
                s, i = search(q)
                best[q_start] = _merge_topk(best.get(q_start), (s, i + c_start), k)
        if not best:
            return np.empty((0, k), np.float32), np.empty((0, k), np.int64)
        return (
            np.concatenate([best[s][0] for s in sorted(best)]),
            np.concatenate([best[s][1] for s in sorted(best)]),
        )

    def _block_search(
        self, c: np.ndarray, k: int
    ) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """Top-k of query blocks within one corpus block (on the GPU: uploaded once)."""
        if self._gpu_res is None and self.spec.dtype != "fp32":
            return lambda q: knn_reduced(q, c, k, self.spec.dtype)  # type: ignore[arg-type]
        if self._gpu_res is None:
            return lambda q: knn(q, c, k, self.spec.backend)
        index = _faiss().GpuIndexFlatIP(self._gpu_res, c.shape[1])
        index.add(c)

        def search(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            scores, idx = index.search(q, k)
            return _sort_rows(scores, idx.astype(np.int64))

        return search


class FaissIndex(VectorIndex):
    """An approximate faiss index (IVF-Flat, IVF-PQ or HNSW-Flat) built block by block.

    IVF trains its coarse quantizer (and PQ codebooks) on a seeded random sample of the corpus.
    IVF-PQ stores compressed codes (``m`` bytes a vector instead of ``4 d``): it fetches
    ``pq_refine * k`` candidates by their PQ estimates and re-scores them exactly from the
    corpus rows (margins need true cosines, not estimates). Queries whose result list
    is incomplete (an IVF probe found fewer than k vectors) are searched again exactly.
    """

    def __init__(self, corpus: np.ndarray, spec: IndexSpec, *, norm: bool = True) -> None:
        super().__init__(corpus, spec, norm=norm)
        faiss = _faiss()
        if faiss is None:
            raise UsageError(f"--index {spec.kind} needs faiss (pip install faiss-cpu)")
        self.kind = spec.kind
        self.n_fallback = 0
        self.exact_fallback = True
        self.knob_value: int | None = None
        n, d = len(corpus), self.dim
        t0 = time.perf_counter()
        if spec.kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = spec.ef_construction
            self.gpu = False  # faiss has no GPU HNSW; the CPU graph is used
        else:
            self.nlist = spec.nlist or max(1, round(4 * math.sqrt(n)))
            # k-means wants >= 39 points per list; fewer lists beats a useless clustering.
            self.nlist = max(1, min(self.nlist, n // 39 or 1))
            quantizer = faiss.IndexFlatIP(d)
            if spec.kind == "ivf":
                index = faiss.IndexIVFFlat(quantizer, d, self.nlist, faiss.METRIC_INNER_PRODUCT)
            else:
                m = spec.pq_m or _default_pq_m(d)
                if d % m:
                    raise UsageError(f"--pq-m {m} must divide the dimension {d}")
                # 8-bit codebooks need >= 256 * 39 training points; small corpora get fewer bits
                nbits = int(min(8, max(1, math.floor(math.log2(max(n // 39, 2))))))
                index = faiss.IndexIVFPQ(
                    quantizer, d, self.nlist, m, nbits, faiss.METRIC_INNER_PRODUCT
                )
            index.cp.seed = spec.seed
            self.gpu = _use_gpu(spec)
            if self.gpu:
                index = faiss.index_cpu_to_all_gpus(index)
            index.train(self._training_sample())
        for _, block in _blocks(corpus, self.block, norm):
            index.add(block)
        self.index = index
        self.build_s = time.perf_counter() - t0
        if spec.knob is not None:
            self.set_knob(spec.knob)

    def _training_sample(self) -> np.ndarray:
        """A seeded random sample of corpus rows (sorted: sequential reads of a memmap)."""
        n = len(self.corpus)
        size = min(n, self.spec.train_size or 64 * self.nlist)
        rows = np.sort(np.random.default_rng(self.spec.seed).choice(n, size, replace=False))
        sample = np.asarray(self.corpus[rows])
        return normalize(sample) if self.norm else np.ascontiguousarray(sample, np.float32)

    @property
    def knob_name(self) -> str:
        """``nprobe`` or ``efSearch``."""
        return _KNOB[self.kind]

    def knob_cap(self, k: int) -> int:
        """Largest knob value worth trying: beyond it exact search is as cheap.

        An IVF list is scanned vector by vector, several times slower per vector than exact
        search's matrix products (measured in docs/benchmarks.md): probing more than about a
        sixteenth of the lists costs what exact search costs.
        """
        if self.kind == "hnsw":
            return max(1024, k)
        return min(self.nlist, max(16, self.nlist // 16))

    def set_knob(self, value: int) -> None:
        """Set ``nprobe`` / ``efSearch`` on the CPU or GPU index."""
        faiss = _faiss()
        space = faiss.GpuParameterSpace() if self.gpu else faiss.ParameterSpace()
        space.set_index_parameter(self.index, self.knob_name, int(value))
        self.knob_value = int(value)

    def tune(self, queries: np.ndarray, k: int, exact: ExactIndex) -> float:
        """Pick the knob on a sample of ``queries``; returns the sample recall reached."""
        t0 = time.perf_counter()
        k = min(k, len(self.corpus))
        _, truth = exact.search(queries, k)
        self.exact_fallback = False  # measure the index itself, not the safety net
        value, cap, recall = 1 if self.kind != "hnsw" else max(16, k), self.knob_cap(k), 0.0
        while True:
            self.set_knob(min(value, cap))
            recall = recall_at_k(self.search(queries, k)[1], truth)
            if recall >= self.spec.target_recall or value >= cap:
                break
            value *= 2
        self.exact_fallback = True
        self.tune_s = time.perf_counter() - t0
        return recall

    def _approx(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The index's own answer for one normalised block (IVF-PQ: refined, re-scored)."""
        if self.kind != "ivfpq":
            scores, ids = self.index.search(q, k)
            return scores, ids.astype(np.int64)
        # PQ distances are estimates: take refine * k candidates, keep the k truly best
        wide = min(len(self.corpus), k * self.spec.pq_refine)
        _, ids = self.index.search(q, wide)
        ids = ids.astype(np.int64)
        scores, ids = _sort_rows(self._rescore(q, ids), ids)
        return scores[:, :k], ids[:, :k]

    def _search_block(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self._approx(q, k)
        missing = (ids < 0).any(axis=1)
        if missing.any() and self.exact_fallback:
            rows = np.nonzero(missing)[0]
            self.n_fallback += len(rows)
            exact = ExactIndex(self.corpus, replace(self.spec, kind="exact"), norm=self.norm)
            scores[rows], ids[rows] = exact.search(q[rows], k)
        return _sort_rows(scores, ids)

    def _rescore(self, q: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Exact inner products of each query with its returned corpus rows."""
        valid = ids >= 0
        uniq, inv = np.unique(ids[valid], return_inverse=True)
        rows = np.asarray(self.corpus[uniq])
        rows = normalize(rows) if self.norm else np.asarray(rows, np.float32)
        scores = np.full(ids.shape, -np.inf, dtype=np.float32)
        r, c = np.nonzero(valid)
        scores[r, c] = np.einsum("ij,ij->i", q[r], rows[inv])
        return scores

    def describe(self) -> dict[str, Any]:
        """Settings and costs for the results file."""
        info: dict[str, Any] = {
            **super().describe(),
            self.knob_name: self.knob_value,
            "build_s": round(self.build_s, 3),
            "tune_s": round(self.tune_s, 3),
            "exact_fallback_rows": self.n_fallback,
        }
        if self.kind != "hnsw":
            info["nlist"] = self.nlist
        else:
            info["hnsw_m"] = self.spec.hnsw_m
        return info


def _default_pq_m(d: int) -> int:
    """Sub-quantizers for IVF-PQ: a byte per 4 dimensions (16x smaller than float32), or the
    closest divisor of d below."""
    for m in range(max(1, d // 4), 0, -1):
        if d % m == 0:
            return m
    return 1


def build_index(spec: IndexSpec, corpus: np.ndarray, *, norm: bool = True) -> VectorIndex:
    """Build the index ``spec.kind`` over ``corpus`` rows (normalised block by block if
    ``norm``); approximate indexes still need :meth:`FaissIndex.tune` or ``spec.knob``."""
    if spec.kind == "exact":
        return ExactIndex(corpus, spec, norm=norm)
    return FaissIndex(corpus, spec, norm=norm)


def _sample_rows(n: int, size: int, seed: int, exclude: np.ndarray | None = None) -> np.ndarray:
    pool = np.arange(n) if exclude is None else np.setdiff1d(np.arange(n), exclude)
    size = min(size, len(pool))
    return np.sort(np.random.default_rng(seed).choice(pool, size, replace=False))


@dataclass
class IndexedKnn:
    """A ``search`` for :func:`xstilts.retrieval.mining.mine` that uses an :class:`IndexSpec`.

    Each call builds an index over its corpus; approximate kinds tune their knob on one sample
    of the queries and measure recall@k against exact search on another, disjoint one
    (``recall_sample`` queries; 0 skips the measurement). ``reports`` has one entry per call
    (per mining direction).
    """

    spec: IndexSpec
    recall_sample: int = 1000
    norm: bool = True
    reports: list[dict[str, Any]] = field(default_factory=list)

    def __call__(
        self, queries: np.ndarray, corpus: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of every query row among the corpus rows."""
        t0 = time.perf_counter()
        index: VectorIndex = build_index(self.spec, corpus, norm=self.norm)
        report: dict[str, Any] = {"n_queries": len(queries)}
        tune_rows = None
        if isinstance(index, FaissIndex):
            exact = ExactIndex(corpus, replace(self.spec, kind="exact"), norm=self.norm)
            if self.spec.knob is None:
                tune_rows = _sample_rows(len(queries), self.spec.tune_sample, self.spec.seed)
                recall = index.tune(queries[tune_rows], k, exact)
                report["tuning_recall"] = round(recall, 4)
                if recall < self.spec.target_recall:
                    log.warning(
                        "%s: recall@%d %.3f at %s=%d (the most that is cheaper than exact "
                        "search) < target %.2f: searching exactly instead (--nprobe forces %s)",
                        index.kind,
                        min(k, len(corpus)),
                        recall,
                        index.knob_name,
                        index.knob_value,
                        self.spec.target_recall,
                        index.kind,
                    )
                    report["fallback"] = {"from": index.describe(), "to": "exact"}
                    index = exact
        t1 = time.perf_counter()
        scores, ids = index.search(queries, k)
        report["search_s"] = round(time.perf_counter() - t1, 3)
        report.update(index.describe())
        if isinstance(index, FaissIndex) and self.recall_sample:
            rows = _sample_rows(len(queries), self.recall_sample, self.spec.seed + 1, tune_rows)
            if len(rows) == 0:  # every query was in the tuning sample: measure on those
                rows = _sample_rows(len(queries), self.recall_sample, self.spec.seed + 1)
                report["recall_sample_is_tuning_sample"] = True
            _, truth = exact.search(queries[rows], k)
            report[f"recall@{min(k, len(corpus))}"] = round(recall_at_k(ids[rows], truth), 4)
            report["recall_sample"] = len(rows)
        report["total_s"] = round(time.perf_counter() - t0, 3)
        self.reports.append(report)
        return scores, ids
