"""The relay's bundle digest (cartable/campaign/relay.py, bundle_hash): the same files give
the same digest whatever their times; any change of path, content or executable bit gives
another, so the server's kept bundle is used exactly when it is the one the job needs."""

from __future__ import annotations

import os
from pathlib import Path

from cartable.campaign.relay import bundle_hash, cached_worker, has_bundle, store_bundle


def _tree(root: Path) -> Path:
    (root / "roles" / "common" / "tasks").mkdir(parents=True)
    (root / "roles" / "common" / "tasks" / "main.yml").write_text("---\n- name: x\n")
    (root / "library").mkdir()
    (root / "library" / "mod.py").write_text("print(1)\n")
    (root / "ansible.cfg").write_text("[defaults]\n")
    return root


def test_same_files_same_digest_whatever_the_times(tmp_path: Path) -> None:
    one, two = _tree(tmp_path / "one"), _tree(tmp_path / "two")
    os.utime(two / "ansible.cfg", (0, 0))
    assert bundle_hash(one) == bundle_hash(two)
    assert len(bundle_hash(one)) == 32 and bundle_hash(one).isalnum()


def test_any_change_gives_another_digest(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "t")
    seen = {bundle_hash(tree)}
    (tree / "library" / "mod.py").write_text("print(2)\n")           # content
    seen.add(bundle_hash(tree))
    (tree / "library" / "mod.py").chmod(0o755)                      # executable bit
    seen.add(bundle_hash(tree))
    (tree / "library" / "mod.py").rename(tree / "library" / "m.py")  # path
    seen.add(bundle_hash(tree))
    (tree / "roles" / "empty.yml").write_text("")                   # a new (empty) file
    seen.add(bundle_hash(tree))
    assert len(seen) == 5


def test_remote_commands_name_the_bundle_in_the_servers_cache() -> None:
    cache = '"$HOME/.cache/cartable/relay/bundles"'
    assert has_bundle("ab12") == f"test -d {cache}/ab12 && touch {cache}/ab12"
    assert f"mv \"$t\" {cache}/ab12" in store_bundle("ab12")
    assert "tail -n +4" in store_bundle("ab12")  # the three newest kept
    worker = cached_worker("/opt/x/ansible-runner", "ab12")
    assert worker.endswith('/opt/x/ansible-runner worker --private-data-dir "$d"')
    assert f"cp -a {cache}/ab12 \"$d/project\"" in worker
