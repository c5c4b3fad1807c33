"""List distribution: publish on the mirror, fetch on the school server over real HTTP
(http.server on 127.0.0.1), deltas, every bad update rejected with the previous lists kept."""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import random
import shutil
import tarfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cartable.cli import main as cartable_main
from cartable.errors import InputError
from cartable.filtering import fetch
from cartable.filtering.compiled import compile_lists, open_build
from cartable.filtering.lists import read_lists
from cartable.filtering.publish import Options, publish
from cartable.filtering.signing import generate, load_private, sign

CATEGORIES = ("gambling", "games", "vpn", "liste_blanche", "doh")
CANARIES = ("gambling:casino-canary.example", "vpn:vpn-canary.example")


def write_tree(root: Path, names: dict[str, list[str]]) -> Path:
    if root.exists():
        shutil.rmtree(root)
    for category, domains in names.items():
        (root / category).mkdir(parents=True)
        usage = "white" if category == "liste_blanche" else "black"
        (root / category / "usage").write_text(usage + "\n")
        (root / category / "domains").write_text("\n".join(domains) + "\n")
    return root


def base_names() -> dict[str, list[str]]:
    rng = random.Random(8)
    names = {c: [f"{c}-{rng.randrange(10**9)}.example" for _ in range(400)] for c in CATEGORIES}
    names["gambling"].append("casino-canary.example")
    names["vpn"].append("vpn-canary.example")
    names["games"].append("casino-canary.example")  # a name in two categories
    return names


class Origin:
    """A folder served on 127.0.0.1 by a thread; records the paths requested."""

    def __init__(self, folder: Path) -> None:
        self.requests: list[str] = []
        self.hooks: dict[str, Callable[[], None]] = {}
        origin = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?")[0].lstrip("/")
                origin.requests.append(path)
                super().do_GET()
                hook = origin.hooks.pop(path, None)
                if hook:
                    hook()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0),
                                          partial(Handler, directory=str(folder)))
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict]:
    key = tmp_path / "keys" / "mirror.key"
    key.parent.mkdir()
    generate(key)
    pub = tmp_path / "www"
    pub.mkdir()
    origin = Origin(tmp_path / "www")
    yield {"tmp": tmp_path, "key": key, "pub_key": key.with_name("mirror.key.pub"),
           "publish": pub, "state": tmp_path / "state", "origin": origin,
           "root": tmp_path / "school"}
    origin.close()


def do_publish(env: dict, tree: Path, keep: int = 7, state: Path | None = None,
               canaries: tuple[str, ...] = CANARIES) -> str:
    opts = Options(str(tree), env["publish"], env["key"], state or env["state"],
                   canaries=canaries, keep=keep)
    return publish(opts, log=lambda _m: None)


def do_fetch(env: dict, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    env["origin"].requests.clear()
    capsys.readouterr()
    code = fetch.main(["update", "--manifest-url", env["origin"].url + "manifest.json",
                       "--public-key", str(env["pub_key"]), "--root", str(env["root"]),
                       "--retry-delay", "0", *extra])
    out = capsys.readouterr()
    return code, out.out + out.err


def current_bytes(env: dict) -> tuple[str, bytes]:
    link = env["root"] / "current"
    return os.readlink(link), (link / "lists.cfl").read_bytes()


def status(env: dict) -> dict:
    return json.loads((env["root"] / "status.json").read_text())


@pytest.fixture
def installed(env: dict, capsys: pytest.CaptureFixture[str]) -> dict:
    """The school holds build 1 (fetched in full)."""
    names = base_names()
    env["names"] = names
    env["tree"] = write_tree(env["tmp"] / "ut1", names)
    env["build1"] = do_publish(env, env["tree"])
    code, text = do_fetch(env, capsys)
    assert code == 0, text
    env["before"] = current_bytes(env)
    return env


def test_publish_then_fetch_installs_the_published_build(installed: dict) -> None:
    env = installed
    link, data = env["before"]
    assert link == f"builds/{env['build1']}"
    assert data == compile_lists(read_lists(env["tree"]))
    assert {"manifest.json", "manifest.json.sig"} <= set(os.listdir(env["root"] / link))
    build = open_build(env["root"] / "current" / "lists.cfl")
    assert {c for _, c in build.lookup("casino-canary.example")} == {"gambling", "games"}
    build.close()
    assert status(env)["result"] == "updated" and status(env)["exit_code"] == 0


def test_a_day_of_changes_travels_as_a_delta_and_rebuilds_the_same_bytes(
        installed: dict, capsys: pytest.CaptureFixture[str]) -> None:
    env = installed
    names = env["names"]
    del names["games"][:20]
    names["gambling"] += [f"new-{i}.example" for i in range(150)]
    write_tree(env["tree"], names)
    build2 = do_publish(env, env["tree"])
    code, text = do_fetch(env, capsys)
    assert code == 0 and "delta" in text, text
    assert [p.split("/")[0] for p in env["origin"].requests] == \
        ["manifest.json", "manifest.json.sig", "deltas"]
    link, data = current_bytes(env)
    assert link == f"builds/{build2}"
    assert data == compile_lists(read_lists(env["tree"]))
    assert status(env)["bytes_fetched"] < len(data) / 10


def test_a_night_without_change_fetches_the_manifest_and_its_signature_only(
        installed: dict, capsys: pytest.CaptureFixture[str]) -> None:
    env = installed
    assert do_publish(env, env["tree"]) == ""  # same origin: no new build
    code, text = do_fetch(env, capsys)
    assert code == 0 and "unchanged" in text
    assert env["origin"].requests == ["manifest.json", "manifest.json.sig"]
    size = sum((env["publish"] / p).stat().st_size for p in env["origin"].requests)
    assert status(env)["bytes_fetched"] == size
    assert size < 2048  # 1 % of the sample lists is 40 kB: see tests/bench/filter_update_bench.py
    assert current_bytes(env) == env["before"]


def test_the_fetch_goes_through_the_proxy_when_given(
        installed: dict, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[str] = []

    class Proxy(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.path)  # absolute-form URI: a proxy request
            direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with direct.open(self.path) as response:
                body = response.read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        code, text = do_fetch(installed, capsys, "--proxy",
                              f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0, text
    assert seen == [installed["origin"].url + "manifest.json",
                    installed["origin"].url + "manifest.json.sig"]


def test_a_damaged_delta_falls_back_to_the_full_build(
        installed: dict, capsys: pytest.CaptureFixture[str]) -> None:
    env = installed
    env["names"]["games"].append("another.example")
    write_tree(env["tree"], env["names"])
    build2 = do_publish(env, env["tree"])
    delta = next((env["publish"] / "deltas").iterdir())
    delta.write_bytes(delta.read_bytes()[:-10])
    code, text = do_fetch(env, capsys)
    assert code == 0 and "delta unusable" in text and "(full," in text, text
    assert [p.split("/")[0] for p in env["origin"].requests] == \
        ["manifest.json", "manifest.json.sig", "deltas", "builds"]
    assert current_bytes(env) == (f"builds/{build2}", compile_lists(read_lists(env["tree"])))


# --- bad updates: rejected, the previous lists keep filtering ---------------------------------

def publish_v2(env: dict, keep: int = 1) -> str:
    """A new build, published without deltas (keep=1): the school fetches it in full."""
    env["names"]["games"].append("another.example")
    write_tree(env["tree"], env["names"])
    return do_publish(env, env["tree"], keep=keep)


def resign(env: dict, change: Callable[[dict], None], key: Path | None = None) -> None:
    path = env["publish"] / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    text = json.dumps(manifest).encode()
    path.write_bytes(text)
    (env["publish"] / "manifest.json.sig").write_text(sign(load_private(key or env["key"]), text))


def full_file(env: dict) -> Path:
    manifest = json.loads((env["publish"] / "manifest.json").read_text())
    return env["publish"] / manifest["full"]["path"]


def signed_full(env: dict, data: bytes) -> None:
    """Serve `data` as the full build under a manifest properly signed for it (a mirror bug)."""
    packed = lzma.compress(data)
    full_file(env).write_bytes(packed)

    def change(m: dict) -> None:
        m["full"].update(sha256=hashlib.sha256(packed).hexdigest(), size=len(packed))
        m["sha256"], m["size"] = hashlib.sha256(data).hexdigest(), max(1, len(data))
    resign(env, change)


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def bad_corrupt(env: dict) -> None:
    flip_byte(full_file(env), len(full_file(env).read_bytes()) // 2)


def bad_corrupt_signed(env: dict) -> None:
    data = bytearray(lzma.decompress(full_file(env).read_bytes()))
    data[-100] ^= 1
    signed_full(env, bytes(data))


def bad_truncated(env: dict) -> None:
    full_file(env).write_bytes(full_file(env).read_bytes()[:1000])


def bad_truncated_signed(env: dict) -> None:
    signed_full(env, lzma.decompress(full_file(env).read_bytes())[:5000])


def bad_empty(env: dict) -> None:
    full_file(env).write_bytes(b"")


def bad_empty_signed(env: dict) -> None:
    signed_full(env, b"")


def bad_unsigned(env: dict) -> None:
    (env["publish"] / "manifest.json.sig").unlink()


def bad_other_key(env: dict) -> None:
    other = env["tmp"] / "keys" / "other.key"
    generate(other)
    resign(env, lambda m: None, key=other)


def bad_modified(env: dict) -> None:
    path = env["publish"] / "manifest.json"
    path.write_text(path.read_text().replace('"games": 4', '"games": 5'))


def bad_forged_digest(env: dict) -> None:
    """Modified, with the digest in the signature file updated to match."""
    path = env["publish"] / "manifest.json"
    text = path.read_text().replace('"games": 4', '"games": 5')
    path.write_text(text)
    sig = env["publish"] / "manifest.json.sig"
    words = sig.read_text().split()
    words[2] = hashlib.sha256(text.encode()).hexdigest()
    sig.write_text(" ".join(words) + "\n")


@pytest.mark.parametrize("damage", [bad_corrupt, bad_corrupt_signed, bad_truncated,
                                    bad_truncated_signed, bad_empty, bad_empty_signed,
                                    bad_unsigned, bad_other_key, bad_modified,
                                    bad_forged_digest], ids=lambda f: f.__name__[4:])
def test_a_bad_update_is_rejected_and_the_previous_lists_keep_filtering(
        installed: dict, capsys: pytest.CaptureFixture[str],
        damage: Callable[[dict], None]) -> None:
    env = installed
    publish_v2(env)
    damage(env)
    code, text = do_fetch(env, capsys)
    assert code == 2, text
    assert "nothing changed" in text
    assert current_bytes(env) == env["before"]
    assert [p for p in os.listdir(env["root"] / "builds")] == [env["build1"]]
    assert status(env)["result"] == "failed" and status(env)["last_success"]


def test_a_wrong_public_key_on_the_school_rejects_the_update(
        installed: dict, capsys: pytest.CaptureFixture[str]) -> None:
    env = installed
    publish_v2(env)
    other = env["tmp"] / "keys" / "school-has-another.key"
    generate(other)
    env["pub_key"] = other.with_name(other.name + ".pub")
    code, text = do_fetch(env, capsys)
    assert code == 2 and "does not verify" in text
    assert current_bytes(env) == env["before"]


def test_a_build_lacking_a_policy_category_is_rejected(
        installed: dict, capsys: pytest.CaptureFixture[str]) -> None:
    env = installed
    policy = env["tmp"] / "policy.json"
    policy.write_text(json.dumps({"name": "ecole", "block": ["gambling", "doh"]}))
    del env["names"]["doh"]
    write_tree(env["tree"], env["names"])
    do_publish(env, env["tree"], state=env["tmp"] / "new-mirror-state")  # new state: no 90 %
    code, text = do_fetch(env, capsys, "--policy", str(policy))
    assert code == 2 and "doh" in text, text
    assert current_bytes(env) == env["before"]


def test_a_publication_between_manifest_and_signature_is_retried_not_accepted(
        installed: dict, capsys: pytest.CaptureFixture[str]) -> None:
    env = installed
    old_sig = (env["publish"] / "manifest.json.sig").read_bytes()
    publish_v2(env, keep=7)
    new_sig = (env["publish"] / "manifest.json.sig").read_bytes()
    (env["publish"] / "manifest.json.sig").write_bytes(old_sig)  # the other half of a publish
    env["origin"].hooks["manifest.json.sig"] = \
        lambda: (env["publish"] / "manifest.json.sig").write_bytes(new_sig)
    code, text = do_fetch(env, capsys)
    assert code == 0, text
    assert env["origin"].requests[:4] == ["manifest.json", "manifest.json.sig"] * 2
    assert "another manifest" in text


def test_an_unreachable_mirror_is_a_fetch_failure(
        installed: dict, capsys: pytest.CaptureFixture[str]) -> None:
    env = installed
    (env["publish"] / "manifest.json").unlink()
    code, text = do_fetch(env, capsys)
    assert code == 1 and "HTTP 404" in text
    env["origin"].close()
    code, text = do_fetch(env, capsys)
    assert code == 1 and "fetch failure" in text
    assert current_bytes(env) == env["before"]
    assert status(env)["result"] == "failed"
    env["origin"] = Origin(env["tmp"])  # for the fixture's close()


# --- refused at publish: nothing published, exit 2 -------------------------------------------

def published_files(env: dict) -> dict[str, bytes]:
    return {str(p.relative_to(env["publish"])): p.read_bytes()
            for p in env["publish"].rglob("*") if p.is_file()}


def test_a_category_shrunk_below_90_percent_is_refused(installed: dict,
                                                       capsys: pytest.CaptureFixture) -> None:
    env = installed
    before = published_files(env)
    del env["names"]["games"][:50]  # 401 -> 351: 88 %
    write_tree(env["tree"], env["names"])
    capsys.readouterr()
    code = cartable_main(["filter", "publish", "--origin", str(env["tree"]), "--publish",
                          str(env["publish"]), "--key", str(env["key"]), "--state",
                          str(env["state"]), "--canary", *CANARIES])
    err = capsys.readouterr().err
    assert code == 2 and "'games': 351 names, was 401" in err
    assert published_files(env) == before


def test_an_md5sum_mismatch_is_refused(installed: dict) -> None:
    env = installed
    before = published_files(env)
    env["names"]["games"].append("one-more.example")
    tree = write_tree(env["tree"], env["names"])
    sums = {f"{c}/domains": hashlib.md5((tree / c / "domains").read_bytes()).hexdigest()
            for c in CATEGORIES}
    sums["games/domains"] = "0" * 32
    (tree / "MD5SUM.LST").write_text("".join(f"{m}  {n}\n" for n, m in sums.items()))
    with pytest.raises(InputError, match="games/domains: MD5 mismatch"):
        do_publish(env, tree)
    assert published_files(env) == before


def test_a_missing_canary_is_refused(installed: dict) -> None:
    env = installed
    before = published_files(env)
    env["names"]["vpn"].remove("vpn-canary.example")
    write_tree(env["tree"], env["names"])
    with pytest.raises(InputError, match="canary vpn-canary.example is not in category 'vpn'"):
        do_publish(env, env["tree"])
    assert published_files(env) == before


def test_a_ut1_tarball_over_http_is_checked_against_md5sum_lst(env: dict) -> None:
    tree = write_tree(env["tmp"] / "blacklists", base_names())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(tree, arcname="blacklists")
    tarball = buffer.getvalue()
    (env["publish"] / "blacklists.tar.gz").write_bytes(tarball)
    (env["publish"] / "MD5SUM.LST").write_text(f"{'f' * 32}  blacklists.tar.gz\n")
    opts = Options(env["origin"].url + "blacklists.tar.gz", env["tmp"] / "out", env["key"],
                   env["state"], canaries=CANARIES)
    with pytest.raises(InputError, match="blacklists.tar.gz: MD5 mismatch"):
        publish(opts, log=lambda _m: None)
    assert not (env["tmp"] / "out" / "manifest.json").exists()
    (env["publish"] / "MD5SUM.LST").write_text(
        f"{hashlib.md5(tarball).hexdigest()}  blacklists.tar.gz\n")
    assert publish(opts, log=lambda _m: None)
    assert json.loads((env["tmp"] / "out" / "manifest.json").read_text())["categories"] == \
        {c: len(set(n)) for c, n in base_names().items()}


# --- keeping builds, status and age alert ----------------------------------------------------

def test_the_last_three_builds_are_kept(installed: dict,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    env = installed
    ids = [env["build1"]]
    for day in range(4):
        env["names"]["games"].append(f"day-{day}.example")
        write_tree(env["tree"], env["names"])
        time.sleep(0.01)
        ids.append(do_publish(env, env["tree"]))
        assert do_fetch(env, capsys)[0] == 0
    assert sorted(os.listdir(env["root"] / "builds")) == sorted(ids[-3:])
    assert os.readlink(env["root"] / "current") == f"builds/{ids[-1]}"


def test_pruning_never_removes_the_current_build(tmp_path: Path) -> None:
    for i, name in enumerate(["a", "b", "c", "d"]):
        (tmp_path / "builds" / name).mkdir(parents=True)
        os.utime(tmp_path / "builds" / name, ns=(i * 10**9, i * 10**9))
    os.symlink("builds/a", tmp_path / "current")  # rolled back to the oldest by hand
    assert fetch.prune(tmp_path, 2) == ["b"]
    assert sorted(os.listdir(tmp_path / "builds")) == ["a", "c", "d"]


def test_status_alerts_when_the_lists_are_too_old_or_absent(
        installed: dict, capsys: pytest.CaptureFixture[str]) -> None:
    env = installed
    code = fetch.main(["status", "--root", str(env["root"]), "--max-age-days", "3"])
    out = capsys.readouterr()
    assert code == 0 and f"build: {env['build1']}" in out.out and "gambling (401)" in out.out
    assert "ALERT" not in out.err
    later = datetime.now(timezone.utc) + timedelta(days=4)
    code, lines, alerts = fetch.status_report(env["root"], 3, now=later)
    assert code == 1 and alerts[0].startswith("ALERT: filter lists") and "4.0 days" in alerts[0]
    code = fetch.main(["status", "--root", str(env["tmp"] / "nowhere"), "--max-age-days", "3"])
    assert code == 1 and capsys.readouterr().err.startswith("ALERT: no usable filter lists")


# --- keys ------------------------------------------------------------------------------------

def test_keygen_writes_a_private_key_0600_and_refuses_to_overwrite(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k"
    assert cartable_main(["filter", "keygen", "--out", str(key)]) == 0
    assert key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "k.pub").read_text().startswith("cartable-filter-ed25519 ")
    before = key.read_bytes()
    assert cartable_main(["filter", "keygen", "--out", str(key)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert key.read_bytes() == before


def test_a_bad_public_key_file_is_bad_input(installed: dict,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    env = installed
    env["pub_key"] = env["tmp"] / "not-a-key.pub"
    env["pub_key"].write_text("ssh-ed25519 AAAA me@host\n")
    code, text = do_fetch(env, capsys)
    assert code == 2 and "not a Cartable filter public key" in text


def test_a_private_key_that_is_not_one_is_refused_at_publish(env: dict) -> None:
    env["key"].write_text("not a key")
    with pytest.raises(InputError, match="not an unencrypted PEM private key"):
        do_publish(env, write_tree(env["tmp"] / "t", base_names()))
    assert not (env["publish"] / "manifest.json").exists()


def test_the_start_is_randomised_within_the_jitter(installed: dict, capsys: pytest.CaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(fetch.time, "sleep", slept.append)
    for _ in range(5):
        assert do_fetch(installed, capsys, "--jitter", "600")[0] == 0
    assert len(slept) == 5 and all(0 <= s <= 600 for s in slept) and len(set(slept)) == 5
