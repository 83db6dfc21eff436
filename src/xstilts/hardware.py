"""What this machine can do: CPU model and bf16 support, devices, compute dtypes, threads.

One place answers "which precision does ``auto`` mean here?" for encoding and training alike,
so the two can never disagree. Native bf16 is read from ``/proc/cpuinfo`` (AMX-BF16 or
AVX512-BF16); ``XSTILTS_CPU_BF16=1|0`` overrides the answer, which is how the test suite runs
the bf16 path on hosts without those instructions and the fp32 path on hosts with them.
"""

from __future__ import annotations

import os

import torch

from xstilts.errors import UsageError

DTYPES = ("auto", "fp32", "bf16", "fp16")
TORCH_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
CPUINFO = "/proc/cpuinfo"
BF16_ENV = "XSTILTS_CPU_BF16"
_BF16_FLAGS = {"amx_bf16", "avx512_bf16"}


def _cpuinfo(field: str) -> str | None:
    """The first ``field`` value in /proc/cpuinfo (None where there is none, e.g. macOS)."""
    try:
        with open(CPUINFO, encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == field:
                    return value.strip()
    except OSError:
        pass
    return None


def cpu_has_native_bf16() -> bool:
    """Whether the CPU itself has AMX-BF16 or AVX512-BF16 (ignores the override)."""
    return bool(_BF16_FLAGS & set((_cpuinfo("flags") or "").split()))


def bf16_override() -> bool | None:
    """``XSTILTS_CPU_BF16`` as a bool (None when unset); any other value is a usage error."""
    raw = os.environ.get(BF16_ENV, "").strip()
    if not raw:
        return None
    if raw not in ("0", "1"):
        raise UsageError(f"{BF16_ENV}={raw!r}: use 1 (treat the CPU as bf16-capable) or 0")
    return raw == "1"


def cpu_supports_bf16() -> bool:
    """Whether ``auto`` should compute in bf16 on this CPU.

    Without native bf16 instructions torch emulates bf16 and autocast is several times SLOWER
    than fp32, so ``auto`` detects rather than guesses; ``XSTILTS_CPU_BF16`` overrides.
    """
    override = bf16_override()
    return cpu_has_native_bf16() if override is None else override


def cpu_model() -> str:
    """The CPU's model name (for benchmark and CI headers: speeds depend on it)."""
    return _cpuinfo("model name") or "unknown"


def describe_cpu() -> str:
    """One line: model, native bf16, the override when set, and what ``auto`` means."""
    override = bf16_override()
    forced = "" if override is None else f", {BF16_ENV}={int(override)}"
    auto = "bf16" if cpu_supports_bf16() else "fp32"
    native = "yes" if cpu_has_native_bf16() else "no"
    return f"CPU: {cpu_model()}; native bf16: {native}{forced}; --dtype auto on CPU = {auto}"


def resolve_device(requested: str | torch.device | None) -> torch.device:
    """The device to run on: CUDA when available by default; a bad or absent one is one line."""
    if requested is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {requested!r}: use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise UsageError(f"--device {requested!r}: CUDA is not available on this machine")
        if device.index is not None and device.index >= n:
            raise UsageError(f"--device {requested!r}: this machine has {n} CUDA device(s)")
    elif device.type != "cpu":
        raise UsageError(f"--device {requested!r}: use cpu, cuda or cuda:N")
    return device


def resolve_dtype(requested: str, device: torch.device) -> str:
    """Concrete compute dtype for ``requested`` on ``device``.

    ``auto``: bf16 on CUDA devices that support it (else fp16), bf16 on CPUs with native bf16
    instructions (or ``XSTILTS_CPU_BF16=1``), fp32 otherwise.
    """
    if requested not in DTYPES:
        raise UsageError(f"unknown dtype {requested!r}; choose one of {', '.join(DTYPES)}")
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_supports_bf16():
        return "bf16"
    return "fp32"


def available_cpus() -> int:
    """CPUs this process may run on (affinity-aware, unlike ``os.cpu_count``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def configure_threads() -> int:
    """Give torch the available cores, split between the processes of one launch.

    Under ``accelerate launch``/``torchrun`` every process would otherwise start one thread
    per core and N processes would oversubscribe the machine N times.
    """
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    n = max(1, available_cpus() // max(local, 1))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


if __name__ == "__main__":  # `python -m xstilts.hardware`: the CI header line
    print(describe_cpu())
