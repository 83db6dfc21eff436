"""What ``--dtype auto`` means on which host, the ``XSTILTS_CPU_BF16`` override, devices, and the
bf16 CPU path tested on purpose (forced) on every host, whatever its instructions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from xstilts import hardware
from xstilts.embedding.encoder import Encoder
from xstilts.errors import UsageError
from xstilts.hardware import resolve_device, resolve_dtype
from xstilts.models import load_model

# every test here asks what --dtype auto means (on fake or real hosts): cheap, run both ways
pytestmark = pytest.mark.dtype_sensitive

CPU = torch.device("cpu")


@pytest.fixture
def fake_cpuinfo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Point the cpuinfo reader at a file the test writes (and drop any override)."""
    monkeypatch.delenv(hardware.BF16_ENV, raising=False)
    path = tmp_path / "cpuinfo"
    monkeypatch.setattr(hardware, "CPUINFO", str(path))
    return path


def test_cpu_bf16_and_model_read_from_cpuinfo(fake_cpuinfo: Path):
    fake_cpuinfo.write_text("processor\t: 0\nmodel name\t: Xeon X\nflags\t\t: fpu avx512f\n")
    assert not hardware.cpu_supports_bf16() and hardware.cpu_model() == "Xeon X"
    fake_cpuinfo.write_text("flags\t\t: fpu avx512f amx_bf16 amx_tile\n")
    assert hardware.cpu_supports_bf16() and hardware.cpu_model() == "unknown"
    fake_cpuinfo.write_text("flags\t\t: fpu avx512_bf16\n")  # AMD Zen 4
    assert hardware.cpu_supports_bf16()
    fake_cpuinfo.unlink()  # no /proc (macOS, Windows): fp32, never a crash
    assert not hardware.cpu_supports_bf16() and hardware.cpu_model() == "unknown"


@pytest.mark.parametrize("native", [False, True])
def test_override_reports_bf16_either_way(native, fake_cpuinfo, monkeypatch):
    fake_cpuinfo.write_text(f"flags\t\t: fpu{' amx_bf16' if native else ''}\n")
    assert resolve_dtype("auto", CPU) == ("bf16" if native else "fp32")
    monkeypatch.setenv(hardware.BF16_ENV, "0")
    assert resolve_dtype("auto", CPU) == "fp32"
    assert hardware.cpu_has_native_bf16() == native  # the override never hides the truth
    monkeypatch.setenv(hardware.BF16_ENV, "1")
    assert resolve_dtype("auto", CPU) == "bf16"
    assert f"native bf16: {'yes' if native else 'no'}" in hardware.describe_cpu()
    assert f"{hardware.BF16_ENV}=1" in hardware.describe_cpu()


def test_explicit_dtypes_ignore_the_host(fake_cpuinfo, monkeypatch):
    monkeypatch.setenv(hardware.BF16_ENV, "1")
    assert resolve_dtype("fp32", CPU) == "fp32"
    monkeypatch.setenv(hardware.BF16_ENV, "0")
    assert resolve_dtype("bf16", CPU) == "bf16"
    with pytest.raises(UsageError, match="unknown dtype 'int8'"):
        resolve_dtype("int8", CPU)


def test_bad_override_value_is_a_usage_error(monkeypatch):
    monkeypatch.setenv(hardware.BF16_ENV, "yes")
    with pytest.raises(UsageError, match="XSTILTS_CPU_BF16='yes'"):
        hardware.cpu_supports_bf16()


@pytest.mark.parametrize("bad", ["tpu", "gpu:0", "cuda:99", "nonsense"])
def test_bad_or_absent_devices_are_usage_errors(bad):
    if bad.startswith("cuda") and torch.cuda.is_available() and torch.cuda.device_count() > 99:
        pytest.skip("a machine with 100 GPUs")
    with pytest.raises(UsageError, match="--device"):
        resolve_device(bad)


def test_cuda_without_cuda_is_a_usage_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device(None) == CPU and resolve_device("cpu") == CPU


# ------------------------------------------------------------ the bf16 path, forced


TEXTS = [
    "Tom lives in Boston.",
    "Hallo",
    "Wie lange sollen Tom und ich hierbleiben, wenn es regnet?",
    "我们明天见。",
    "Bonjour tout le monde !",
] * 3


@pytest.fixture(scope="module")
def loaded(tiny_model: Path):
    return load_model(str(tiny_model))


def test_forced_bf16_encoding_stays_close_to_fp32(loaded):
    """bf16 keeps 8 significant bits (relative rounding 2^-9 per operation): pooled vectors of
    a 2-layer model agree with fp32 to cosine >= 0.999, not to fp32's 1e-5."""
    fp32 = Encoder(loaded.model, loaded.tokenizer, device="cpu", dtype="fp32")
    bf16 = Encoder(loaded.model, loaded.tokenizer, device="cpu", dtype="bf16")
    a, _ = fp32.encode(TEXTS, batch_size=4)
    b, _ = bf16.encode(TEXTS, batch_size=4)
    assert bf16.dtype == "bf16" and b.dtype == np.float32  # pooled in float32 either way
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    assert cos.min() >= 0.999, cos.min()
    assert np.abs(a - b).max() > 1e-6  # bf16 really ran: not bit-identical to fp32


def test_auto_follows_the_override(loaded, monkeypatch):
    monkeypatch.setenv(hardware.BF16_ENV, "1")
    assert Encoder(loaded.model, loaded.tokenizer, device="cpu").dtype == "bf16"
    monkeypatch.setenv(hardware.BF16_ENV, "0")
    assert Encoder(loaded.model, loaded.tokenizer, device="cpu").dtype == "fp32"
