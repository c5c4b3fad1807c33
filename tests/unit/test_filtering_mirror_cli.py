"""cartable-filter-publish and cartable-filter-keygen as the role filter_mirror installs them:
Cartable's errors.py and filtering/ copied alone, a wrapper run by `python3 -I`; the exit codes
the mirror's systemd unit reports (0 published/unchanged, 1 origin unreachable, 2 check failed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "ut1-blacklists"

WRAPPER = """\
import sys
sys.path.insert(0, {lib!r})
from cartable.filtering.cli import {function}
code = {function}()
loaded = sorted(m for m in sys.modules if m in ("yaml", "netaddr", "cartable.cli", "jinja2"))
if loaded:
    print("loaded: " + " ".join(loaded), file=sys.stderr)
    code = 99
sys.exit(code)
"""


@pytest.fixture(scope="module")
def commands(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The files the role copies (cartable/__init__.py, errors.py, filtering/*.py) and wrappers."""
    root = tmp_path_factory.mktemp("mirror-host")
    lib = root / "lib" / "cartable"
    (lib / "filtering").mkdir(parents=True)
    for name in ("__init__.py", "errors.py"):
        shutil.copy(REPO / "cartable" / name, lib / name)
    for path in (REPO / "cartable" / "filtering").glob("*.py"):
        shutil.copy(path, lib / "filtering" / path.name)
    found = {}
    for name, function in (("publish", "publish_main"), ("keygen", "keygen_main")):
        found[name] = root / f"cartable-filter-{name}"
        found[name].write_text(WRAPPER.format(lib=str(root / "lib"), function=function))
    return found


def run(command: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-I", str(command), *map(str, args)], cwd="/",
                          capture_output=True, text=True, check=False, timeout=120)


def test_keygen_publish_then_unchanged(commands: dict[str, Path], tmp_path: Path) -> None:
    key = tmp_path / "keys" / "signing.key"
    key.parent.mkdir()
    made = run(commands["keygen"], "--out", key)
    assert made.returncode == 0, made.stderr
    assert key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keys" / "signing.key.pub").read_text().startswith("cartable-filter")
    www, state = tmp_path / "www", tmp_path / "state"
    first = run(commands["publish"], "--origin", SAMPLE, "--publish", www, "--key", key,
                "--state", state, "--keep", "3")
    assert first.returncode == 0, first.stderr
    assert "published " in first.stdout
    assert (www / "manifest.json").is_file() and (www / "manifest.json.sig").is_file()
    manifest = (www / "manifest.json").read_bytes()
    second = run(commands["publish"], "--origin", SAMPLE, "--publish", www, "--key", key,
                 "--state", state)
    assert second.returncode == 0, second.stderr
    assert "unchanged: build " in second.stdout
    assert (www / "manifest.json").read_bytes() == manifest


def test_keygen_refuses_to_overwrite_a_key(commands: dict[str, Path], tmp_path: Path) -> None:
    key = tmp_path / "signing.key"
    key.write_text("the old key\n")
    result = run(commands["keygen"], "--out", key)
    assert result.returncode == 2
    assert "refusing to overwrite" in result.stderr and "Traceback" not in result.stderr
    assert key.read_text() == "the old key\n"


def test_unreachable_origin_exits_1_nothing_published(commands: dict[str, Path],
                                                      tmp_path: Path) -> None:
    key = tmp_path / "signing.key"
    assert run(commands["keygen"], "--out", key).returncode == 0
    www = tmp_path / "www"
    www.mkdir()
    # Port 9 of loopback: nothing listens there, the connection is refused at once.
    result = run(commands["publish"], "--origin", "http://127.0.0.1:9/blacklists.tar.gz",
                 "--publish", www, "--key", key, "--state", tmp_path / "state")
    assert result.returncode == 1, result.stderr
    assert "cannot fetch the origin" in result.stderr and "Traceback" not in result.stderr
    assert list(www.iterdir()) == []


def test_failed_check_exits_2_nothing_published(commands: dict[str, Path], tmp_path: Path) -> None:
    key = tmp_path / "signing.key"
    assert run(commands["keygen"], "--out", key).returncode == 0
    www = tmp_path / "www"
    www.mkdir()
    # The sample without its gambling category: the canary gambling:pokerstars.com fails.
    origin = tmp_path / "ut1"
    shutil.copytree(SAMPLE, origin, ignore=shutil.ignore_patterns("gambling", "MD5SUM.LST"))
    result = run(commands["publish"], "--origin", origin, "--publish", www, "--key", key,
                 "--state", tmp_path / "state")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "nothing written" in result.stderr and "Traceback" not in result.stderr
    assert list(www.iterdir()) == []


def test_usage_errors_exit_2(commands: dict[str, Path], tmp_path: Path) -> None:
    result = run(commands["publish"], "--publish", tmp_path, "--key", tmp_path / "k")
    assert result.returncode == 2 and "--origin" in result.stderr
    result = run(commands["publish"], "--origin", SAMPLE, "--publish", tmp_path / "www",
                 "--key", tmp_path / "missing.key")
    assert result.returncode == 2 and "cannot read the private key" in result.stderr
