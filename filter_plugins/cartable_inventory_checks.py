# Copyright: Cartable contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checks of roles/validate_inventory, on the summary the role reads once from hostvars.

* ``hosts | cartable_inventory_problems(schools, groups, settings)``: every problem of the
  inventory, as ``{subject, text}`` (subject: the host, school group, MAC or address concerned);
* ``problems | cartable_problem_lines``: one line per distinct text, ``subject: text``, naming
  up to three subjects (``a, b, c and 29 more: text``), sorted as the role lists them;
* ``lines | cartable_problem_report(max_listed)``: the message of the role's assert.

``hosts`` is the role's summary, one mapping per host of ``groups['all']`` (in that order):
``name``, ``groups``, ``printer``, ``server``, ``ansible_host``, ``mac``, ``network``,
``addresses``, ``printer_uri``, ``uai``, ``managed``, ``admins``, ``access`` (``user``, ``ssh``,
``root_login``, ``kept``; ``None`` for an unmanaged host), ``ntp``, ``shares``,
``share_groups``, ``proxy`` (cartable_academic_proxy) and ``filter_policy``
(cartable_filter_policy), the last two read on school servers only (``None`` elsewhere). ``schools`` is one mapping per non-empty ``school_<uai>`` group: ``name``,
``hosts``, ``server`` (cartable_school_server), ``networks`` (cartable_school_networks).

One pure function per family of checks (``printer_and_address_problems``, ``mac_problems``...);
each returns its problems in host order. A summary of the wrong shape (not the role's) raises
``AnsibleFilterError`` naming the filter and the value; bad inventory values are problems, not
errors. The address, naming and lock-out rules come from cartable_net.py, cartable_naming.py
and cartable_access.py beside this file, the school proxy's inputs from cartable_proxy_checks.py
(the academic proxy; the filter policy read as the filter helper reads it).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleFilterError

Problem = dict[str, str]
Host = Mapping[str, Any]

_IPV4 = re.compile(r"^((25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])[.]){3}(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])$")
_MAC = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
_SSH_KEY = re.compile(r"(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)"
                      r"|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh[.]com) [A-Za-z0-9+/]+=*( |$)")
HOST_KEYS = ("name", "groups", "printer", "server", "ansible_host", "mac", "network", "addresses",
             "printer_uri", "uai", "managed", "admins", "access", "ntp", "shares", "share_groups",
             "proxy", "filter_policy")
SCHOOL_KEYS = ("name", "hosts", "server", "networks")
SETTINGS = {"network_keys": ["subnet", "gateway", "netmask", "dhcp_start", "dhcp_end"],
            "printer_uri_schemes": ["ipp", "ipps", "http", "https", "socket", "lpd", "dnssd", "usb"],
            "school_member_groups": ["school_servers", "workstations", "printers", "scanners",
                                     "projectors", "laptops"],
            "file_server_default_groups": ["teachers", "pupils"]}
HEADER = ("The inventory has {count} problem(s); no host was touched. Fix the site file (or the "
          "group_vars) and rebuild the inventory:")


def _load(name: str) -> Any:
    """A filter file beside this one (filter plugins are not a package)."""
    spec = importlib.util.spec_from_file_location(f"{name}_for_inventory_checks",
                                                  Path(__file__).with_name(f"{name}.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_NET = _load("cartable_net")
_NAMING = _load("cartable_naming")
_ACCESS = _load("cartable_access")
_PROXY = _load("cartable_proxy_checks")


def _problem(subject: Any, text: str) -> Problem:
    return {"subject": str(subject), "text": text}


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _in_subnet(address: Any, subnet: str) -> bool:
    """A dotted-quad string inside `subnet` (cartable_in_subnet); anything else is not."""
    if not isinstance(address, str) or not _IPV4.match(address):
        return False
    try:
        return bool(_NET.in_subnet(address, subnet))
    except AnsibleFilterError:  # e.g. leading zeros, which the dotted-quad pattern lets through
        return False


def _is_network(value: Any) -> bool:
    """An IPv4 network in canonical CIDR form, host bits zero, at least two addresses."""
    if not isinstance(value, str):
        return False
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError:
        return False
    return network.num_addresses > 1 and str(network) == value


def _in_network(value: Any, subnet: str) -> bool:
    """An address or network (ansible.utils.in_network) inside `subnet`."""
    if not isinstance(value, str):
        return False
    try:
        inner = ipaddress.ip_network(value)
    except ValueError:
        return False
    return inner.version == 4 and inner.subnet_of(ipaddress.IPv4Network(subnet))


def _join(values: Iterable[Any]) -> str:
    return ", ".join(str(value) for value in values)


def _unique(values: Iterable[Any]) -> list[Any]:
    """The values in first-seen order, each once (works for unhashable values)."""
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def printer_and_address_problems(hosts: list[Host], schemes: list[str]) -> list[Problem]:
    """Hosts without an address, printers without a URI or with a URI that is not one."""
    uri_pattern = re.compile("(" + "|".join(schemes) + ")://[^/]")
    problems = []
    for host in hosts:
        address = host["ansible_host"] if isinstance(host["ansible_host"], str) else ""
        uri = host["printer_uri"] if isinstance(host["printer_uri"], str) else ""
        if host["printer"] and not uri and not address.strip():
            problems.append(_problem(host["name"], "printer without a URI: neither cartable_printer_uri "
                                     "(e.g. ipp://10.35.0.24/ipp/print) nor ansible_host is set"))
        elif not host["printer"] and not address.strip():
            problems.append(_problem(host["name"], "ansible_host is not set: every host needs its address"))
        if host["printer"] and uri and not uri_pattern.match(uri):
            problems.append(_problem(host["name"], f"cartable_printer_uri '{uri}' is not a printer URI ("
                                     + "://, ".join(schemes) + "://...)"))
    return problems


def host_name_problems(hosts: list[Host]) -> list[Problem]:
    """School hosts whose name is not DNS- and NetBIOS-safe (the rule of cartable/naming.py)."""
    problems = []
    for host in hosts:
        if host["uai"] != "no school":
            text = _NAMING.cartable_host_name_problem(host["name"])
            if text:
                problems.append(_problem(host["name"], text))
    return problems


def mac_problems(hosts: list[Host]) -> list[Problem]:
    """Malformed MAC addresses, and MAC addresses given to two hosts."""
    problems = []
    owners: dict[str, list[Host]] = {}
    for host in hosts:
        if host["mac"] is None:
            continue
        mac = str(host["mac"]).lower().replace("-", ":")
        if _MAC.match(mac):
            owners.setdefault(mac, []).append(host)
        else:
            problems.append(_problem(host["name"], f"cartable_mac '{host['mac']}' is not a MAC address "
                                     "(e.g. 52:54:00:35:07:11)"))
    for mac, hosts_of_mac in sorted(owners.items()):
        if len(hosts_of_mac) > 1:
            listed = "), ".join(f"{host['name']} (school {host['uai']}" for host in hosts_of_mac)
            problems.append(_problem(f"cartable_mac {mac}",
                                     f"the same MAC on {len(hosts_of_mac)} hosts: {listed})"))
    return problems


def address_problems(hosts: list[Host]) -> list[Problem]:
    """Addresses (ansible_host, cartable_addresses) given to two hosts."""
    owners: dict[str, list[tuple[str, str]]] = {}
    for host in hosts:
        if host["ansible_host"] is not None:
            owners.setdefault(str(host["ansible_host"]), []).append((host["name"], "ansible_host"))
        addresses = host["addresses"] if isinstance(host["addresses"], Mapping) else {}
        for network, address in addresses.items():
            owners.setdefault(str(address), []).append((host["name"], f"cartable_addresses.{network}"))
    problems = []
    for address, users in sorted(owners.items()):
        names = _unique(name for name, _ in users)
        if len(names) > 1:
            listed = "), ".join(f"{name} ({variable}" for name, variable in users)
            problems.append(_problem(f"address {address}",
                                     f"the same address on {len(names)} hosts: {listed})"))
    return problems


def _network_problems(school: Mapping[str, Any], networks: Mapping[str, Any],
                      keys: list[str]) -> tuple[list[Problem], dict[str, str]]:
    """A school's network definitions: (problems, {network: subnet} of the valid ones)."""
    problems, good = [], {}
    for name, network in networks.items():
        missing = [key for key in keys if not isinstance(network, Mapping) or key not in network]
        label = f"cartable_school_networks.{name}"
        if missing:
            problems.append(_problem(school["name"], f"{label} lacks {', '.join(missing)}"))
        elif not _is_network(network["subnet"]):
            problems.append(_problem(school["name"], f"{label}.subnet '{network['subnet']}' is not an IPv4 "
                                     "network (e.g. 10.35.0.0/24)"))
        else:
            for key in ("gateway", "dhcp_start", "dhcp_end"):
                if not _in_network(network[key], network["subnet"]):
                    problems.append(_problem(school["name"], f"{label}.{key} '{network[key]}' is not in its "
                                             f"subnet {network['subnet']}"))
            good[name] = network["subnet"]
    return problems, good


def _host_network_problems(host: Host, school: Mapping[str, Any], networks: Mapping[str, Any],
                           good: dict[str, str]) -> list[Problem]:
    """A host of a school: the server on every network, another host on one, inside it."""
    problems = []
    if host["server"]:
        addresses = host["addresses"]
        for name, subnet in good.items():
            if not isinstance(addresses, Mapping) or name not in addresses:
                problems.append(_problem(host["name"], f"cartable_addresses has no address on {name}: the "
                                         "school server is on every network of its school"))
            elif not _in_subnet(addresses[name], subnet):
                problems.append(_problem(host["name"], f"cartable_addresses.{name} '{addresses[name]}' is "
                                         f"outside its network {name} ({subnet})"))
        return problems
    network, names = host["network"], _join(networks)
    if network is None:
        problems.append(_problem(host["name"], f"cartable_network is not set (the network of {school['name']} "
                                 f"the host is on: {names})"))
    elif not isinstance(network, str) or network not in networks:
        problems.append(_problem(host["name"], f"cartable_network '{network}' is not a network of "
                                 f"{school['name']} ({names})"))
    elif (network in good and isinstance(host["ansible_host"], str) and _IPV4.match(host["ansible_host"])
          and not _in_subnet(host["ansible_host"], good[network])):
        problems.append(_problem(host["name"], f"ansible_host '{host['ansible_host']}' is outside its "
                                 f"network {network} ({good[network]})"))
    return problems


def school_problems(hosts: list[Host], schools: list[Mapping[str, Any]], keys: list[str]) -> list[Problem]:
    """Each school: its server, its networks, its hosts' networks and addresses."""
    index = {host["name"]: host for host in hosts}
    problems = []
    for school in schools:
        server = school["server"]
        if not server:
            problems.append(_problem(school["name"], "cartable_school_server is not set: the school has no server"))
        elif server not in school["hosts"]:
            problems.append(_problem(school["name"], f"cartable_school_server is {server}, which is not a host "
                                     f"of {school['name']}: the school has no server"))
        elif not index[server]["server"]:
            problems.append(_problem(school["name"], f"cartable_school_server {server} is not in the group "
                                     "school_servers"))
        networks = school["networks"]
        if not isinstance(networks, Mapping) or not networks:
            problems.append(_problem(school["name"], "cartable_school_networks is not set (a mapping of "
                                     f"networks, each with {', '.join(keys)})"))
            networks = {}
        found, good = _network_problems(school, networks, keys)
        problems += found
        for name in school["hosts"]:
            problems += _host_network_problems(index[name], school, networks, good)
    return problems


def membership_problems(schools: list[Mapping[str, Any]], groups: Mapping[str, list[str]],
                        member_groups: list[str]) -> list[Problem]:
    """Equipment in no school_<uai> group, or in two."""
    members = _unique(host for group in member_groups for host in groups.get(group) or [])
    in_schools = [host for school in schools for host in school["hosts"]]
    known = set(in_schools)
    problems = [_problem(host, "in no school_<uai> group: its school (cartable_school_server, "
                               "cartable_school_networks) is unknown")
                for host in sorted((host for host in members if host not in known), key=str.lower)]
    counts: dict[str, int] = {}
    for host in in_schools:
        counts[host] = counts.get(host, 0) + 1
    for host, count in counts.items():
        if count > 1:
            names = _join(school["name"] for school in schools if host in school["hosts"])
            problems.append(_problem(host, f"in {count} schools: {names}"))
    return problems


def ntp_problems(hosts: list[Host]) -> list[Problem]:
    """School servers without a time source."""
    return [_problem(host["name"], "cartable_ntp_servers is empty or not a list: the school server has no "
                                   "time source (site file: ntp)")
            for host in hosts
            if host["server"] and (not _is_list(host["ntp"])
                                   or not any(isinstance(server, str) and server for server in host["ntp"]))]


def admins_texts(admins: Any) -> list[str]:
    """What is wrong with one value of cartable_admins (each sentence names the entry)."""
    if not _is_list(admins):
        return ["cartable_admins is not a list"]
    texts = []
    for position, admin in enumerate(admins):
        label = f"cartable_admins[{position}]"
        if not isinstance(admin, Mapping):
            texts.append(f"{label} is not a mapping {{name, ssh_keys, state}}")
            continue
        name_problem = _NAMING.cartable_admin_name_problem(admin.get("name"))
        if name_problem:
            texts.append(f"{label}.name: {name_problem}")
            continue
        label += f" ({admin['name']})"
        state = admin.get("state", "present")
        if state not in ("present", "absent"):
            texts.append(f"{label}.state '{state}' is not present or absent")
        keys = admin.get("ssh_keys", [])
        if not _is_list(keys):
            texts.append(f"{label}.ssh_keys is not a list of public keys")
        elif state == "present" and not keys:
            texts.append(f"{label}.ssh_keys is empty: a present administrator needs a key")
        else:
            texts += [f"{label}.ssh_keys[{index}] is not an SSH public key line (type, base64 key, comment)"
                      for index, key in enumerate(keys) if not isinstance(key, str) or not _SSH_KEY.match(key)]
    names = [admin["name"] for admin in admins if isinstance(admin, Mapping) and "name" in admin]
    texts += [f"cartable_admins names {name} twice" for name in _unique(names) if names.count(name) > 1]
    return texts


def _cached(key: Any, cache: dict[str, Any], compute: Callable[[], Any]) -> Any:
    """compute() once per distinct (JSON-equal) key: a value set for the whole site is checked once."""
    text = json.dumps(key, sort_keys=True, default=str)
    if text not in cache:
        cache[text] = compute()
    return cache[text]


def admin_problems(hosts: list[Host]) -> list[Problem]:
    """The administrators (cartable_admins) of the managed hosts."""
    cache: dict[str, list[str]] = {}
    return [_problem(host["name"], text) for host in hosts if host["managed"]
            for text in _cached(host["admins"], cache, lambda host=host: admins_texts(host["admins"]))]


def lockout_problems(hosts: list[Host]) -> list[Problem]:
    """Managed hosts reached over SSH that the run would lock Ansible out of (cartable_access.py)."""
    cache: dict[str, str] = {}
    problems = []
    for host in hosts:
        access = host["access"]
        if not host["managed"] or not isinstance(access, Mapping) or not access.get("ssh"):
            continue
        why = _cached([access, host["admins"]], cache, lambda access=access, host=host:
                      _ACCESS.cartable_lockout_problem(access["user"], access["root_login"],
                                                       host["admins"], access["kept"]))
        if why:
            problems.append(_problem(host["name"], why))
    return problems


def share_problems(hosts: list[Host], default_groups: list[str]) -> list[Problem]:
    """File shares (file_server__shares) of school servers that name an unknown group."""
    problems = []
    for host in hosts:
        if not host["server"] or host["shares"] is None:
            continue
        if host["share_groups"] is not None:
            groups = host["share_groups"] if _is_list(host["share_groups"]) else []
            known = [group["name"] for group in groups if isinstance(group, Mapping) and "name" in group]
            source = "file_server__groups"
        else:
            known, source = list(default_groups), "the file_server role's default file_server__groups"
        for position, share in enumerate(host["shares"] if _is_list(host["shares"]) else []):
            if not isinstance(share, Mapping):
                continue
            label = f"file_server__shares[{share.get('name', position)}]"
            for mode in ("read", "write"):
                names = share.get(mode) or []
                if not _is_list(names):
                    problems.append(_problem(host["name"], f"{label}.{mode} '{names}' is not a list of group "
                                             "names"))
                    continue
                problems += [_problem(host["name"], f"{label}.{mode} names the group '{group}', which is not "
                                      f"in {source} ({_join(known)})") for group in names if group not in known]
    return problems


def _school_of(host: Host) -> str:
    """The school_<uai> group of a host (its name when it has none)."""
    groups = host["groups"] if _is_list(host["groups"]) else []
    return next((g for g in groups if str(g).startswith("school_") and g != "school_servers"), host["name"])


def school_proxy_problems(hosts: list[Host]) -> list[Problem]:
    """School servers whose school proxy cannot converge: no academic proxy, a bad filter policy."""
    cache: dict[str, list[str]] = {}
    problems = []
    for host in hosts:
        if host["server"]:
            texts = (_cached(["proxy", host["proxy"]], cache,
                             lambda host=host: _PROXY.cartable_academic_proxy_problems(host["proxy"]))
                     + _cached(["policy", host["filter_policy"]], cache,
                               lambda host=host: _PROXY.cartable_filter_policy_problems(host["filter_policy"])))
            problems += [_problem(_school_of(host), text) for text in texts]
    return problems


def _checked(filter_name: str, what: str, items: Any, keys: tuple[str, ...]) -> list[Mapping[str, Any]]:
    if not _is_list(items):
        raise AnsibleFilterError(f"{filter_name}: {what} {items!r} is not a list")
    for item in items:
        if not isinstance(item, Mapping) or not all(key in item for key in keys):
            missing = [key for key in keys if not isinstance(item, Mapping) or key not in item]
            raise AnsibleFilterError(f"{filter_name}: {what} entry {item!r} is not the role's summary "
                                     f"(lacks {', '.join(missing)})")
    return list(items)


def cartable_inventory_problems(hosts: Any, schools: Any, groups: Any,
                                settings: Any = None) -> list[Problem]:
    """Every problem of the inventory summary, as {subject, text}, family by family."""
    name = "cartable_inventory_problems"
    hosts = _checked(name, "hosts", hosts, HOST_KEYS)
    schools = _checked(name, "schools", schools, SCHOOL_KEYS)
    known = {str(host["name"]) for host in hosts}
    for school in schools:
        if not _is_list(school["hosts"]) or not all(str(member) in known for member in school["hosts"]):
            raise AnsibleFilterError(f"{name}: schools entry {school['name']!r}: hosts {school['hosts']!r} is not "
                                     "a list of hosts of the summary")
    if not isinstance(groups, Mapping):
        raise AnsibleFilterError(f"{name}: groups {groups!r} is not a mapping {{group: [hosts]}}")
    settings = settings or {}
    if not isinstance(settings, Mapping) or set(settings) - set(SETTINGS):
        raise AnsibleFilterError(f"{name}: settings {settings!r} is not a mapping of "
                                 f"{', '.join(SETTINGS)}")
    options = {**SETTINGS, **settings}
    for key, value in options.items():
        if not _is_list(value) or not all(isinstance(item, str) for item in value):
            raise AnsibleFilterError(f"{name}: settings.{key} {value!r} is not a list of strings")
    return (printer_and_address_problems(hosts, options["printer_uri_schemes"])
            + mac_problems(hosts)
            + address_problems(hosts)
            + school_problems(hosts, schools, options["network_keys"])
            + membership_problems(schools, groups, options["school_member_groups"])
            + ntp_problems(hosts)
            + admin_problems(hosts)
            + lockout_problems(hosts)
            + share_problems(hosts, options["file_server_default_groups"])
            + host_name_problems(hosts)
            + school_proxy_problems(hosts))


def cartable_problem_lines(problems: Any) -> list[str]:
    """One line per distinct text, naming its first three subjects, sorted (case-insensitive)."""
    if not _is_list(problems) or not all(isinstance(problem, Mapping) and {"subject", "text"} <= set(problem)
                                         for problem in problems):
        raise AnsibleFilterError(f"cartable_problem_lines: {problems!r} is not a list of {{subject, text}}")
    subjects: dict[str, list[str]] = {}
    for problem in problems:
        subjects.setdefault(str(problem["text"]), [])
        if str(problem["subject"]) not in subjects[str(problem["text"])]:
            subjects[str(problem["text"])].append(str(problem["subject"]))
    lines = []
    for text, names in sorted(subjects.items(), key=lambda item: item[0].lower()):
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        lines.append(f"{', '.join(names[:3])}{more}: {text}")
    return sorted(lines, key=str.lower)


def cartable_problem_report(lines: Any, max_listed: Any = 60) -> str:
    """The assert's message: a header, then at most max_listed lines, then '... and N more'."""
    if not _is_list(lines) or not all(isinstance(line, str) for line in lines):
        raise AnsibleFilterError(f"cartable_problem_report: {lines!r} is not a list of lines")
    if isinstance(max_listed, bool) or not isinstance(max_listed, int) or max_listed < 0:
        raise AnsibleFilterError(f"cartable_problem_report: max_listed {max_listed!r} is not a number >= 0 "
                                 "(validate_inventory__max_listed)")
    out = [HEADER.format(count=len(lines))] + [f"- {line}" for line in lines[:max_listed]]
    if len(lines) > max_listed:
        out.append(f"... and {len(lines) - max_listed} more")
    return "\n".join(out)


class FilterModule:
    """Cartable's inventory checks (validate_inventory)."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "cartable_inventory_problems": cartable_inventory_problems,
            "cartable_problem_lines": cartable_problem_lines,
            "cartable_problem_report": cartable_problem_report,
        }
