"""Unit tests of roles/file_server/action_plugins/file_server_vault_passwords.py.

The action is driven through ActionModule.ensure with a stand-in task (check mode, diff) and real
ansible-vault secrets; the file it writes is read back with Ansible's own DataLoader, as the inventory
reads group_vars. The molecule scenario of file_server runs it for real (first converge, a second
clone, no vault password).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.vault import VaultLib, VaultSecret, VaultSecretsContext

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "roles" / "file_server" / "action_plugins"))
import file_server_vault_passwords as plugin  # an action plugin of the role, not a package

CHARS = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
SECRET = [("default", VaultSecret(b"the-site-vault-password"))]


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> list:
    """Ansible given a vault password (as by --vault-password-file)."""
    monkeypatch.setattr(VaultSecretsContext, "_current", VaultSecretsContext(SECRET))
    return SECRET


def action(check: bool = False, diff: bool = False) -> plugin.ActionModule:
    module = plugin.ActionModule.__new__(plugin.ActionModule)
    module._task = SimpleNamespace(check_mode=check, diff=diff)
    return module


def site(tmp_path: Path) -> Path:
    return tmp_path / "inventories" / "ville" / "group_vars" / "all" / "file_server_passwords.vault.yml"


def wanted(path: Path, **scopes: list[str]) -> dict[str, dict[str, list[str]]]:
    return plugin.merge_requests([{"path": str(path), "scope": s, "accounts": a} for s, a in scopes.items()])


def decrypted(path: Path, secrets: list) -> dict[str, dict[str, str]]:
    """The passwords as Ansible's loader reads the file (group_vars are read this way)."""
    loader = DataLoader()
    loader.set_vault_secrets(secrets)
    data = loader.load_from_file(str(path))
    return {scope: {account: str(value) for account, value in accounts.items()}
            for scope, accounts in data[plugin.VARIABLE].items()}


def test_first_run_creates_one_encrypted_password_per_account(tmp_path: Path, secrets: list) -> None:
    path = site(tmp_path)
    result = action().ensure(wanted(path, **{"0350607v": ["0350607v-eleve", "0350607v-enseignant"]}), 20, CHARS)

    assert result["changed"] is True
    assert result["created"] == ["0350607v/0350607v-eleve", "0350607v/0350607v-enseignant"]
    passwords = decrypted(path, secrets)["0350607v"]
    assert sorted(passwords) == ["0350607v-eleve", "0350607v-enseignant"]
    text = path.read_text()
    for password in passwords.values():
        assert len(password) == 20 and set(password) <= set(CHARS)
        assert password not in text
    assert passwords["0350607v-eleve"] != passwords["0350607v-enseignant"]
    assert text.count("!vault |") == 2 and '"0350607v-eleve": !vault |' in text
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.listdir(path.parent) == [path.name]  # no temporary file left


def test_second_run_changes_nothing_and_keeps_the_file_byte_for_byte(tmp_path: Path, secrets: list) -> None:
    path = site(tmp_path)
    request = wanted(path, **{"0350607v": ["0350607v-eleve"]})
    action().ensure(request, 20, CHARS)
    before = path.read_bytes()

    result = action().ensure(request, 20, CHARS)

    assert result["changed"] is False and result["created"] == []
    assert path.read_bytes() == before


def test_a_new_account_is_added_and_existing_ciphertexts_are_kept(tmp_path: Path, secrets: list) -> None:
    path = site(tmp_path)
    action().ensure(wanted(path, **{"0350607v": ["0350607v-eleve"]}), 20, CHARS)
    old_text = path.read_text()
    old = decrypted(path, secrets)

    result = action().ensure(wanted(path, **{"0350607v": ["0350607v-eleve"], "0352000a": ["0352000a-eleve"]}),
                             20, CHARS)

    assert result["created"] == ["0352000a/0352000a-eleve"]
    new_text = path.read_text()
    old_block = old_text.split('"0350607v":\n', 1)[1]
    assert old_block in new_text  # the existing value's lines are unchanged: a minimal diff
    now = decrypted(path, secrets)
    assert now["0350607v"] == old["0350607v"]
    assert list(now) == ["0350607v", "0352000a"]


def test_accounts_of_the_file_not_requested_are_kept(tmp_path: Path, secrets: list) -> None:
    path = site(tmp_path)
    action().ensure(wanted(path, a=["x-eleve"], b=["y-eleve"]), 20, CHARS)
    before = decrypted(path, secrets)

    action().ensure(wanted(path, b=["y-eleve", "y-enseignant"]), 20, CHARS)

    after = decrypted(path, secrets)
    assert after["a"] == before["a"] and after["b"]["y-eleve"] == before["b"]["y-eleve"]


def test_without_a_vault_password_it_fails_saying_how_to_give_one(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(VaultSecretsContext, "_current", VaultSecretsContext([]))
    path = site(tmp_path)

    with pytest.raises(plugin.VaultFileError) as error:
        action().ensure(wanted(path, **{"0350607v": ["0350607v-eleve"]}), 20, CHARS)

    message = str(error.value)
    assert message.startswith("no vault password")
    assert "--vault-password-file" in message and "ANSIBLE_VAULT_PASSWORD_FILE" in message
    assert str(path) in message and "README" in message
    assert not (tmp_path / "inventories").exists()


def test_without_accounts_to_keep_no_vault_password_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(VaultSecretsContext, "_current", None)

    result = action().ensure(plugin.merge_requests([{"path": "/x/p.yml", "scope": "s", "accounts": []}]), 20, CHARS)

    assert result["changed"] is False


def test_a_wrong_vault_password_is_refused_naming_the_entry(tmp_path: Path, secrets: list,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = site(tmp_path)
    action().ensure(wanted(path, s=["a-eleve"]), 20, CHARS)
    before = path.read_bytes()
    monkeypatch.setattr(VaultSecretsContext, "_current", VaultSecretsContext([("default", VaultSecret(b"other"))]))

    with pytest.raises(plugin.VaultFileError, match="does not open the password of s/a-eleve"):
        action().ensure(wanted(path, s=["a-eleve", "a-enseignant"]), 20, CHARS)
    assert path.read_bytes() == before


def test_check_mode_reports_what_it_would_create_and_writes_nothing(tmp_path: Path, secrets: list) -> None:
    path = site(tmp_path)

    result = action(check=True, diff=True).ensure(wanted(path, s=["a-eleve"]), 20, CHARS)

    assert result["changed"] is True and result["created"] == ["s/a-eleve"]
    assert result["msg"].startswith("would create")
    assert result["diff"] == [{"before_header": str(path), "after_header": str(path),
                               "before": "", "after": "s/a-eleve\n"}]
    assert not (tmp_path / "inventories").exists()


def test_check_mode_on_an_existing_file_leaves_it_alone(tmp_path: Path, secrets: list) -> None:
    path = site(tmp_path)
    action().ensure(wanted(path, s=["a-eleve"]), 20, CHARS)
    before = path.read_bytes()

    result = action(check=True).ensure(wanted(path, s=["a-eleve", "a-enseignant"]), 20, CHARS)

    assert result["created"] == ["s/a-enseignant"]
    assert path.read_bytes() == before


def test_the_diff_lists_names_never_values(tmp_path: Path, secrets: list) -> None:
    path = site(tmp_path)

    result = action(diff=True).ensure(wanted(path, s=["a-eleve"]), 20, CHARS)

    password = decrypted(path, secrets)["s"]["a-eleve"]
    assert result["diff"][0]["after"] == "s/a-eleve\n"
    assert password not in repr(result)


def test_a_named_vault_id_is_used_for_new_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    named = [("ville", VaultSecret(b"pw"))]
    monkeypatch.setattr(VaultSecretsContext, "_current", VaultSecretsContext(named))
    path = site(tmp_path)

    action().ensure(wanted(path, s=["a-eleve"]), 20, CHARS)

    assert "$ANSIBLE_VAULT;1.2;AES256;ville" in path.read_text()
    assert len(decrypted(path, named)["s"]["a-eleve"]) == 20


def test_an_existing_mode_is_kept(tmp_path: Path, secrets: list) -> None:
    path = site(tmp_path)
    action().ensure(wanted(path, s=["a-eleve"]), 20, CHARS)
    path.chmod(0o644)

    action().ensure(wanted(path, s=["a-eleve", "b-eleve"]), 20, CHARS)

    assert os.stat(path).st_mode & 0o777 == 0o644


# --------------------------------------------------------------------------- file format


def vaulttext(plain: str = "pw") -> str:
    return VaultLib(SECRET).encrypt(plain).decode()


def test_render_then_parse_round_trips() -> None:
    store = {"0350607v": {"0350607v-eleve": vaulttext(), "007": vaulttext()}, "empty": {}}

    text = plugin.render_store(store)

    assert text.startswith("---\n#")
    assert plugin.parse_store(text, "f.yml") == {"0350607v": store["0350607v"]}
    assert '"007": !vault |' in text  # quoted: not the number 7
    assert text.index('"007"') < text.index('"0350607v-eleve"')


def test_an_empty_store_renders_an_empty_mapping() -> None:
    assert plugin.render_store({}).endswith(f"{plugin.VARIABLE}: {{}}\n")
    assert plugin.parse_store(plugin.render_store({}), "f") == {}
    assert plugin.parse_store("", "f") == {}


@pytest.mark.parametrize(("text", "expected"), [
    ("$ANSIBLE_VAULT;1.1;AES256\n6162\n", "the whole file is encrypted.*ansible-vault decrypt f.yml"),
    ("file_server__vault_passwords:\n  s:\n    a: clear-text\n", "line 3, s/a: not a !vault value"),
    ("other: 1\n", "line 1: unexpected variable 'other'"),
    ("file_server__vault_passwords: [1]\n", "line 1: file_server__vault_passwords must be a mapping"),
    ("file_server__vault_passwords:\n  s: 3\n", "line 2: file_server__vault_passwords.s must be a mapping"),
    ("file_server__vault_passwords:\n  s:\n    a: !vault |\n      nope\n", "no \\$ANSIBLE_VAULT header"),
    ("file_server__vault_passwords: {s: [\n", "f.yml: not valid YAML"),
    ("- 1\n", "line 1: expected a mapping"),
])
def test_a_file_it_cannot_use_is_refused_with_where_and_how(text: str, expected: str) -> None:
    with pytest.raises(plugin.VaultFileError, match=expected):
        plugin.parse_store(text, "f.yml")


def test_an_account_listed_twice_is_refused() -> None:
    value = "!vault |\n      " + vaulttext().replace("\n", "\n      ")
    text = f"file_server__vault_passwords:\n  s:\n    a: {value}\n    a: {value}\n"

    with pytest.raises(plugin.VaultFileError, match="listed twice"):
        plugin.parse_store(text, "f.yml")


def test_a_plain_value_is_never_echoed_in_the_error() -> None:
    with pytest.raises(plugin.VaultFileError) as error:
        plugin.parse_store("file_server__vault_passwords:\n  s:\n    a: Secret-123\n", "f.yml")
    assert "Secret-123" not in str(error.value)


def test_add_passwords_never_replaces_one() -> None:
    with pytest.raises(plugin.VaultFileError, match="never replaced"):
        plugin.add_passwords({"s": {"a": "x"}}, {("s", "a"): "y"})


# --------------------------------------------------------------------------- requests, generation


def test_requests_of_several_hosts_merge_by_file_and_school() -> None:
    merged = plugin.merge_requests([
        {"path": "/i/g/all/p.yml", "scope": "a", "accounts": ["a-eleve"]},
        {"path": "/i/g/all/./p.yml", "scope": "a", "accounts": ["a-enseignant", "a-eleve"]},
        {"path": "/i/g/all/p.yml", "scope": "b", "accounts": []},
        {"path": "/other.yml", "scope": "c", "accounts": ["c-eleve"]},
    ])

    assert merged == {"/i/g/all/p.yml": {"a": ["a-eleve", "a-enseignant"]}, "/other.yml": {"c": ["c-eleve"]}}


@pytest.mark.parametrize(("request_", "expected"), [
    ({"path": "relative/p.yml", "scope": "a", "accounts": []}, "path must be an absolute file path"),
    ({"path": None, "scope": "a", "accounts": []}, "path must be an absolute file path"),
    ({"path": "/p.yml", "scope": "", "accounts": []}, "scope must be a non-empty string"),
    ({"path": "/p.yml", "scope": "a", "accounts": "a-eleve"}, "accounts must be a list of names"),
])
def test_a_bad_request_is_refused(request_: dict, expected: str) -> None:
    with pytest.raises(plugin.VaultFileError, match=expected):
        plugin.merge_requests([request_])


def test_generated_passwords_are_random_and_drawn_from_the_characters() -> None:
    passwords = {plugin.generate_password(20, CHARS) for _ in range(50)}

    assert len(passwords) == 50
    assert all(len(p) == 20 and set(p) <= set(CHARS) for p in passwords)


@pytest.mark.parametrize(("length", "chars"), [(7, CHARS), (20, "abc")])
def test_weak_password_settings_are_refused(length: int, chars: str) -> None:
    with pytest.raises(ValueError):
        plugin.generate_password(length, chars)
