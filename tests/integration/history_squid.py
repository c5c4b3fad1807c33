#!/usr/bin/env python3
"""The history behind a real squid 5 (Debian 12's), on loopback only, as root.

    python3 tests/integration/history_squid.py [--squid-root DIR] [--keep]

`--squid-root`: a folder where Debian's `squid`, `squid-common`, `squid-langpack`, `libecap3`
and `libltdl7` packages were unpacked (`apt-get download ...; dpkg-deb -x PKG DIR`), when squid
is not installed (installing it would start a system squid); default: the system's squid.

What it does, in a temporary folder: copies `cartable/` (errors, filtering, history) where the
`proxy` user can read it; compiles the UT1 sample's `gambling` category; starts a local origin
(127.0.0.1) standing for the academic proxy and squid (127.0.0.1, `cache_peer` parent, never
direct, no DNS server but 127.0.0.1) with the filter helper and the history logger as the role
renders them (docs/history.md); makes requests (allowed, blocked HTTP, blocked CONNECT, a query
string); `squid -k reconfigure` (the logger is restarted); moves the day file away and
`squid -k rotate` (the logger reopens); `squid -k shutdown` (nothing lost); then seal, verify,
report as root. Checks every step; prints what it saw; stops every process it started.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PORT, ORIGIN = 3399, 8399
LISTED = "0-casino.info"  # in the UT1 sample's gambling category


def _squid_paths(root: Path | None) -> tuple[list[str], dict[str, str], str]:
    if root is None:
        return ["/usr/sbin/squid"], dict(os.environ), ""
    env = dict(os.environ, LD_LIBRARY_PATH=str(root / "usr/lib/x86_64-linux-gnu"))
    extra = (f"icon_directory {root}/usr/share/squid/icons\n"
             f"mime_table {root}/usr/share/squid/mime.conf\n"
             f"unlinkd_program {root}/usr/lib/squid/unlinkd\n"
             f"error_directory {root}/usr/share/squid-langpack/en\n")
    return [str(root / "usr/sbin/squid")], env, extra


def _setup(tmp: Path, extra: str) -> Path:
    lib = tmp / "lib" / "cartable"
    lib.mkdir(parents=True)
    for name in ("__init__.py", "errors.py"):
        shutil.copy(REPO / "cartable" / name, lib / name)
    for package in ("history", "filtering"):
        shutil.copytree(REPO / "cartable" / package, lib / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    (tmp / "build").mkdir()
    python = REPO / ".venv" / "bin" / "python"  # the controller's (compile is not a server job)
    subprocess.run([str(python) if python.exists() else sys.executable, "-m", "cartable.cli",
                    "filter", "compile", "--lists", str(REPO / "data" / "ut1-blacklists"),
                    "--out", str(tmp / "build"),
                    "--categories", "gambling"], check=True, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=tmp)
    (tmp / "policy.json").write_text(json.dumps({"name": "t", "block": ["gambling"]}))
    (tmp / "hosts.json").write_text(json.dumps(
        [{"name": "0350607v-sdi03", "mac": "52:54:00:aa:bb:03", "addresses": ["127.0.0.1"]}]))
    (tmp / "dnsmasq.leases").write_text("1764700000 52:54:00:aa:bb:77 127.0.0.1 dhcp-name *\n")
    (tmp / "logger.json").write_text(json.dumps({"hosts": str(tmp / "hosts.json"),
                                                 "leases": str(tmp / "dnsmasq.leases")}))
    for name, module, args in (
            ("logger", "cartable.history.logger", f"--config {tmp}/logger.json"),
            ("helper", "cartable.filtering.helper",
             f"--policy {tmp}/policy.json --lists {tmp}/build")):
        (tmp / name).write_text(f'#!/bin/sh\nPYTHONPATH={tmp}/lib exec /usr/bin/python3 -m '
                                f'{module} {args} "$@"\n')
        (tmp / name).chmod(0o755)
    history = tmp / "history"
    history.mkdir()
    shutil.chown(history, "root", "proxy")
    history.chmod(0o3775)  # what the role creates
    run = tmp / "run"
    run.mkdir()
    shutil.chown(run, "proxy")
    (tmp / "www").mkdir()
    (tmp / "www" / "index.html").write_text("hello\n")
    conf = tmp / "squid.conf"
    conf.write_text(f"""\
http_port 127.0.0.1:{PORT}
pid_filename {run}/squid.pid
cache_log {run}/cache.log
coredump_dir {run}
cache deny all
cache_mem 8 MB
cache_effective_user proxy
pinger_enable off
dns_nameservers 127.0.0.1
cache_peer 127.0.0.1 parent {ORIGIN} 0 no-query originserver name=origin
never_direct allow all
logformat cartable_history %ts.%03tu %>a %>eui %Ss/%03>Hs %rm %ru %<st %ea
logfile_daemon {tmp}/logger
access_log daemon:{history} cartable_history
logfile_rotate 0
external_acl_type cartable_filter ttl=0 negative_ttl=0 children-max=1 concurrency=10 %>rd {tmp}/helper
acl filter_ok external cartable_filter
http_access deny !filter_ok
http_access allow filter_ok
http_access deny all
{extra}""")
    for path in [tmp, *tmp.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o005 | (0o010 if path.is_dir() else 0))
    return conf


def _get(url: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler(
        {"http": f"http://127.0.0.1:{PORT}", "https": f"http://127.0.0.1:{PORT}"}))
    try:
        return opener.open(url, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0  # a refused CONNECT


def _rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()[1:]]


def _check(ok: bool, what: str) -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        raise SystemExit(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squid-root", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root (squid drops to the proxy user, seal chowns to root:adm)")
        return 2
    squid, env, extra = _squid_paths(args.squid_root)
    tmp = Path(tempfile.mkdtemp(prefix="cartable-history-squid-"))
    started: list[subprocess.Popen] = []
    try:
        conf = _setup(tmp, extra)
        history = tmp / "history"
        started.append(subprocess.Popen(
            ["/usr/bin/python3", "-m", "http.server", str(ORIGIN), "--bind", "127.0.0.1"],
            cwd=tmp / "www", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        main_squid = subprocess.Popen([*squid, "-N", "-f", str(conf)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(main_squid)
        time.sleep(3)
        codes = [_get("http://www.example.org/"), _get(f"http://{LISTED}/page"),
                 _get("http://www.example.org/search?q=secret"), _get(f"https://{LISTED}/")]
        print("HTTP codes (allowed, blocked, query, blocked CONNECT):", codes)
        _check(codes[1] == 403, "a listed host is refused (403)")
        subprocess.run([*squid, "-f", str(conf), "-k", "reconfigure"], env=env, check=True)
        time.sleep(3)
        _get(f"http://{LISTED}/after-reconfigure")
        time.sleep(1.5)
        (day,) = history.glob("*.log")
        moved = history / "moved.log.old"
        day.rename(moved)
        subprocess.run([*squid, "-f", str(conf), "-k", "rotate"], env=env, check=True)
        time.sleep(1)
        for i in range(5):
            _get(f"http://www.example.org/after-rotate/{i}")
        subprocess.run([*squid, "-f", str(conf), "-k", "shutdown"], env=env, check=True)
        main_squid.wait(timeout=60)
        time.sleep(1)
        before, after = _rows(moved), _rows(day)
        for row in before + after:
            print("  " + "\t".join(row))
        urls = [r[5] for r in before]
        _check(urls[:4] == ["http://www.example.org/", f"http://{LISTED}/page",
                            "http://www.example.org/search?", f"{LISTED}:443"],
               "requests logged in order, query string stripped, CONNECT as host:port")
        _check(f"http://{LISTED}/after-reconfigure" in urls, "logged across a reconfigure")
        _check([r[5] for r in after] == [f"http://www.example.org/after-rotate/{i}"
                                         for i in range(5)],
               "after a rotate, today's file is reopened; all lines of the shutdown written")
        blocked = [r for r in before if r[5].startswith(("http://0-", "0-"))]
        _check(all(r[6:8] == ["BLOCKED", "gambling"] for r in blocked),
               "blocked requests carry the helper's category (%ea)")
        _check(all(r[2:4] == ["52:54:00:aa:bb:77", "0350607v-sdi03"] for r in before + after),
               "MAC (lease: squid's %>eui is all-zero on loopback) and name (inventory)")
        _check(day.stat().st_uid != 0 and day.stat().st_mode & 0o777 == 0o640,
               "the day file was written by squid's user, 0640")
        moved.unlink()
        tomorrow = time.strftime("%Y-%m-%d", time.localtime(time.time() + 86400))
        cli = ["/usr/bin/python3", "-m", "cartable.history.cli"]
        cli_env = dict(os.environ, PYTHONPATH=str(tmp / "lib"))
        for verb in (["seal", "--leases", str(tmp / "dnsmasq.leases")], ["verify"]):
            done = subprocess.run([*cli, verb[0], "--dir", str(history), "--today", tomorrow,
                                   *verb[1:]], env=cli_env, capture_output=True, text=True)
            print(done.stdout, end="")
            _check(done.returncode == 0, f"{verb[0]} as root")
        proxy_rm = subprocess.run(["runuser", "-u", "proxy", "--", "rm", "-f",
                                   str(history / "chain")], capture_output=True)
        _check(proxy_rm.returncode != 0 and (history / "chain").exists(),
               "squid's user cannot remove the chain (sticky folder)")
        return 0
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    sys.exit(main())
