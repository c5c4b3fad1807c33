"""Action plugin of roles/file_server: the Samba passwords kept in the inventory, encrypted with ansible-vault.

Runs on the controller only (an action plugin: no module is sent to any host). For each request
{path, scope, accounts} it makes sure that the vault file `path` holds one password per account of the
scope (the school), and creates the missing ones: random, encrypted with Ansible's own vault
(ansible.parsing.vault.VaultLib, the secret Ansible was given: --vault-password-file,
ANSIBLE_VAULT_PASSWORD_FILE, vault_password_file or vault ids), written atomically under a lock. An
existing password is never replaced nor re-encrypted (its text is kept byte for byte, so the file's diff
in a merge request shows only the accounts added). In check mode it reports what it would create and
writes nothing. It never returns a password: the role reads the file with include_vars, as the inventory
does on the next run.

The file (one `!vault` value per account, names in clear so a review sees which accounts changed):

    ---
    # ...
    file_server__vault_passwords:
      "0350607v":
        "0350607v-eleve": !vault |
          $ANSIBLE_VAULT;1.1;AES256
          ...
"""

from __future__ import annotations

import fcntl
import os
import secrets
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from typing import Any, Iterator

import yaml
from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.parsing.vault import AnsibleVaultError, VaultLib, VaultSecretsContext, match_encrypt_secret
from ansible.plugins.action import ActionBase

VARIABLE = "file_server__vault_passwords"
DEFAULT_MODE = 0o600
HEADER = (
    "---\n"
    "# Samba passwords of roles/file_server, by school and account, each encrypted with ansible-vault.\n"
    "# Written by the role when an account has no password yet; an existing one is never changed by it.\n"
    "# Commit this file with the inventory. Read or change a password: roles/file_server/README.md.\n"
)
HOW_TO_SET_THE_VAULT_PASSWORD = (
    "give Ansible the site's vault password: `--vault-password-file FILE` (or `--vault-id FILE`), "
    "or `export ANSIBLE_VAULT_PASSWORD_FILE=FILE`, or `vault_password_file = FILE` in ansible.cfg; "
    "FILE lives outside the repository (see roles/file_server/README.md, 'Passwords')"
)

Store = dict[str, dict[str, str]]
"""scope (school) -> account -> vault text ($ANSIBLE_VAULT envelope, as in the file)."""


class VaultFileError(Exception):
    """The vault file cannot be used as it is; the message says where and how to fix it."""


# --------------------------------------------------------------------------- pure functions


def parse_store(text: str, path: str) -> Store:
    """Read the text of a vault file into {scope: {account: vault text}}, refusing anything else."""
    if text.lstrip().startswith("$ANSIBLE_VAULT"):
        raise VaultFileError(
            f"{path}: the whole file is encrypted; it must stay one !vault value per account: "
            f"run `ansible-vault decrypt {path}` (the values inside stay encrypted)")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise VaultFileError(f"{path}: not valid YAML: {exc}") from None
    store: Store = {}
    if root is None:
        return store
    if not isinstance(root, yaml.MappingNode):
        raise VaultFileError(f"{path}, line {root.start_mark.line + 1}: expected a mapping with {VARIABLE}")
    for key, value in root.value:
        if key.value != VARIABLE:
            raise VaultFileError(
                f"{path}, line {key.start_mark.line + 1}: unexpected variable {key.value!r}: this file holds "
                f"{VARIABLE} only (put other variables in another file of the folder)")
        if isinstance(value, yaml.ScalarNode) and value.tag == "tag:yaml.org,2002:null":
            continue
        for scope_key, accounts in _mapping(value, path, f"{VARIABLE}"):
            scope = store.setdefault(scope_key.value, {})
            for account_key, secret in _mapping(accounts, path, f"{VARIABLE}.{scope_key.value}"):
                where = f"{path}, line {secret.start_mark.line + 1}, {scope_key.value}/{account_key.value}"
                if not isinstance(secret, yaml.ScalarNode) or secret.tag != "!vault":
                    raise VaultFileError(
                        f"{where}: not a !vault value; every password must be encrypted "
                        f"(`ansible-vault encrypt_string --stdin-name {account_key.value}`)")
                if not secret.value.startswith("$ANSIBLE_VAULT;"):
                    raise VaultFileError(f"{where}: the !vault value has no $ANSIBLE_VAULT header")
                if account_key.value in scope:
                    raise VaultFileError(f"{where}: the account is listed twice")
                scope[account_key.value] = secret.value.strip() + "\n"
    return store


def _mapping(node: yaml.Node, path: str, name: str) -> list[tuple[yaml.ScalarNode, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise VaultFileError(f"{path}, line {node.start_mark.line + 1}: {name} must be a mapping")
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise VaultFileError(f"{path}, line {key.start_mark.line + 1}: {name} has a key that is not a name")
    return node.value


def render_store(store: Mapping[str, Mapping[str, str]]) -> str:
    """The vault file for store: sorted, names quoted (a UAI or an account may look like a number)."""
    lines = [HEADER.rstrip("\n"), f"{VARIABLE}:" + ("" if any(store.values()) else " {}")]
    for scope in sorted(store):
        if not store[scope]:
            continue
        lines.append(f"  {_quote(scope)}:")
        for account in sorted(store[scope]):
            lines.append(f"    {_quote(account)}: !vault |")
            lines.extend(f"      {line}" for line in store[scope][account].strip().splitlines())
    return "\n".join(lines) + "\n"


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def merge_requests(requests: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """{path: {scope: sorted account names}} from the hosts' requests (several hosts may share a file)."""
    merged: dict[str, dict[str, set[str]]] = {}
    for number, request in enumerate(requests, 1):
        path, scope, accounts = request.get("path"), request.get("scope"), request.get("accounts")
        if not isinstance(path, str) or not os.path.isabs(path):
            raise VaultFileError(f"request {number}: path must be an absolute file path, got {path!r}")
        if not isinstance(scope, str) or not scope:
            raise VaultFileError(f"request {number} ({path}): scope must be a non-empty string, got {scope!r}")
        if not isinstance(accounts, list) or not all(isinstance(a, str) and a for a in accounts):
            raise VaultFileError(f"request {number} ({path}): accounts must be a list of names, got {accounts!r}")
        merged.setdefault(os.path.normpath(path), {}).setdefault(scope, set()).update(accounts)
    return {path: {scope: sorted(names) for scope, names in scopes.items() if names}
            for path, scopes in merged.items() if any(scopes.values())}


def missing_accounts(store: Store, wanted: Mapping[str, list[str]]) -> list[tuple[str, str]]:
    """(scope, account) pairs of wanted that store has no password for, sorted."""
    return sorted((scope, account) for scope, accounts in wanted.items() for account in accounts
                  if account not in store.get(scope, {}))


def add_passwords(store: Store, new: Mapping[tuple[str, str], str]) -> Store:
    """A copy of store with the new vault texts; refuses to replace an existing password."""
    result = {scope: dict(accounts) for scope, accounts in store.items()}
    for (scope, account), vaulttext in new.items():
        if account in result.get(scope, {}):
            raise VaultFileError(f"{scope}/{account} already has a password: it is never replaced")
        result.setdefault(scope, {})[account] = vaulttext
    return result


def generate_password(length: int, chars: str) -> str:
    """A random password of length characters drawn from chars (secrets.SystemRandom)."""
    if length < 8:
        raise ValueError(f"password length {length}: at least 8 characters")
    if len(set(chars)) < 10:
        raise ValueError(f"password characters {chars!r}: at least 10 different ones")
    return "".join(secrets.choice(chars) for _ in range(length))


def names_listing(store: Store) -> str:
    """What --diff shows: one `scope/account` line per password, never a value."""
    return "".join(f"{scope}/{account}\n" for scope in sorted(store) for account in sorted(store[scope]))


# --------------------------------------------------------------------------- files


def read_store(path: str) -> Store:
    """The store of the vault file at path; empty when the file does not exist yet."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        raise VaultFileError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise VaultFileError(f"{path}: cannot read it: {exc.strerror}") from None
    return parse_store(text, path)


@contextmanager
def locked_directory(directory: str) -> Iterator[None]:
    """An exclusive flock on the directory itself (no lock file left behind): one writer at a time."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_atomically(path: str, text: str) -> None:
    """Replace path by text in one rename (a reader sees the old or the new file, never a part)."""
    directory = os.path.dirname(path)
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = DEFAULT_MODE
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


# --------------------------------------------------------------------------- the action



def vault_secrets() -> list:
    """The vault secrets Ansible was given (--vault-password-file, ANSIBLE_VAULT_PASSWORD_FILE, vault ids)."""
    context = VaultSecretsContext.current(optional=True)
    return list(context.secrets) if context and context.secrets else []


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    ARGUMENT_SPEC = {
        "requests": {"type": "list", "elements": "dict", "required": True},
        "length": {"type": "int", "default": 20},
        "chars": {"type": "str", "required": True},
    }

    def run(self, tmp: Any = None, task_vars: dict | None = None) -> dict:
        result = super().run(tmp, task_vars)
        del tmp
        _, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        try:
            wanted = merge_requests(args["requests"])
            result.update(self.ensure(wanted, args["length"], args["chars"]))
        except (VaultFileError, ValueError, AnsibleError) as exc:
            result.update(failed=True, msg=f"file_server passwords: {exc}")
        return result

    def ensure(self, wanted: dict[str, dict[str, list[str]]], length: int, chars: str) -> dict:
        if not wanted:
            return {"changed": False, "created": [], "msg": "no account takes its password from a vault file"}
        secret_list = vault_secrets()
        if not secret_list:
            count = sum(len(names) for scopes in wanted.values() for names in scopes.values())
            raise VaultFileError(
                f"no vault password: the Samba passwords of {count} account(s) are kept encrypted with "
                f"ansible-vault in {', '.join(sorted(wanted))}; {HOW_TO_SET_THE_VAULT_PASSWORD}")
        vault = VaultLib(secret_list)
        vault_id, secret = match_encrypt_secret(secret_list, C.DEFAULT_VAULT_ENCRYPT_IDENTITY or None)
        check = bool(self._task.check_mode)
        created: list[str] = []
        diffs: list[dict] = []
        for path, scopes in sorted(wanted.items()):
            directory = os.path.dirname(path)
            if not check:
                os.makedirs(directory, mode=0o755, exist_ok=True)
            with locked_directory(directory) if os.path.isdir(directory) else _no_lock():
                store = read_store(path)
                check_opens(vault, store, scopes, path)
                missing = missing_accounts(store, scopes)
                if not missing:
                    continue
                new = {pair: "" for pair in missing} if check else {
                    pair: vault.encrypt(generate_password(length, chars), secret=secret,
                                        vault_id=vault_id).decode("ascii")
                    for pair in missing}
                after = add_passwords(store, new)
                if not check:
                    write_atomically(path, render_store(after))
            created.extend(f"{scope}/{account}" for scope, account in missing)
            diffs.append({"before_header": path, "after_header": path,
                          "before": names_listing(store), "after": names_listing(after)})
        verb = "would create" if check else "created"
        result: dict[str, Any] = {
            "changed": bool(created), "created": created,
            "msg": f"{verb} the password of {', '.join(created)}" if created else "every account has its password"}
        if self._task.diff and diffs:
            result["diff"] = diffs
        return result


@contextmanager
def _no_lock() -> Iterator[None]:
    yield


def check_opens(vault: Any, store: Store, scopes: Mapping[str, list[str]], path: str) -> None:
    """Fail early, naming the entry, when the vault password given does not open a password in use."""
    for scope, accounts in scopes.items():
        for account in accounts:
            if account in store.get(scope, {}):
                try:
                    vault.decrypt(store[scope][account])
                except AnsibleVaultError:
                    raise VaultFileError(
                        f"{path}: the vault password given does not open the password of {scope}/{account}; "
                        f"{HOW_TO_SET_THE_VAULT_PASSWORD}") from None
