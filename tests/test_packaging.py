"""The wheel: built from the repository, installed into a fresh virtualenv outside the
checkout, it carries its shipped specs and runs ``xstilts quickstart`` (checked to the point
where the grid is built: ``--dry-run`` resolves the packaged spec and the builtin model; the
full quickstart from the wheel is a documented manual step, docs/experiments.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel installed (its dependencies come from the test
    environment through a .pth line, so nothing is downloaded)."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(root / "dist")],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (root / "dist").glob("xstilts-*.whl")
    env_dir = root / "env"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    # dependencies (torch, transformers, ...) from this environment; a plain path line does not
    # run this environment's own .pth files, so the checkout's editable install stays out
    (Path(site) / "zz_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env_dir


def test_wheel_ships_the_configs(installed: Path):
    (wheel,) = (installed.parent / "dist").glob("xstilts-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "xstilts/configs/quickstart.yaml" in names
    assert "xstilts/configs/phang2020-xlmr-large.yaml" in names
    assert "xstilts/data/checksums.json" in names


def test_installed_quickstart_runs_outside_the_checkout(installed: Path, tmp_path: Path):
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": ""}
    probe = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import xstilts; print(xstilts.__file__)"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert str(installed) in probe.stdout and str(REPO) not in probe.stdout
    proc = subprocess.run(
        [str(installed / "bin" / "xstilts"), "quickstart", "--dry-run"],
        cwd=work, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "mnli+xnli" in proc.stdout and "4 cells" in proc.stdout
    assert "estimate on this machine" in proc.stdout  # calibrated from the wheel too
    shown = proc.stdout.replace("\n", "")  # run directories, relative to the working directory
    assert "runs/quickstart/train/builtin_multilingual-e5-small-" in shown and "../" not in shown
