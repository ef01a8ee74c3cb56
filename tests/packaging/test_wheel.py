"""Installing smsguard adds one importable top-level name, from a wheel as from the editable install."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("engine", "api", "review", "review_ui", "storage", "training", "sending", "audit", "batches",
           "console", "webauth")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources it builds.
    source = tmp_path_factory.mktemp("source") / "smsguard"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "var", "build", "node_modules", "__pycache__", "*.egg-info", ".*_cache", ".hypothesis"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "-w", str(out), str(source)], check=True, capture_output=True)
    (found,) = out.glob("smsguard-*.whl")
    return found


def test_wheel_has_one_top_level_name(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"smsguard"}
    for folder in FOLDERS:
        assert f"smsguard/{folder}/__init__.py" in names
    # templates, static assets and migrations travel with their packages
    assert any(n.startswith("smsguard/console/templates/") for n in names)
    assert any(n.startswith("smsguard/review_ui/static/") for n in names)
    assert any(n.startswith("smsguard/storage/migrations/versions/") for n in names)


def test_wheel_installs_into_a_fresh_venv_and_imports(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # The wheel goes in for real; its dependencies come from this interpreter's site-packages (no network).
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    code = ("import smsguard.engine, smsguard.api, smsguard.batches, smsguard.sending, smsguard.cli\n"
            "import importlib.util as u\n"
            f"print([n for n in {FOLDERS!r} if u.find_spec(n) is not None])\n"
            "print(smsguard.engine.__file__)")
    result = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path)
    leaked, where = result.stdout.splitlines()
    assert leaked == "[]"  # no generic top-level module besides smsguard
    assert where.startswith(str(site))


def test_editable_install_maps_the_folders() -> None:
    import smsguard.engine

    assert Path(smsguard.engine.__file__).parent == ROOT / "engine"
