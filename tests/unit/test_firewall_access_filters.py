"""filter_plugins/cartable_firewall.py and cartable_access.py, called directly."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import filters_of



def _filters(name: str) -> dict[str, Any]:
    return filters_of(name)


ports = _filters("cartable_firewall")["cartable_firewall_ports"]
lockout = _filters("cartable_access")["cartable_lockout_problem"]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE jdupont"


def test_ports_by_protocol_sorted_unique() -> None:
    declared = [{"port": 445}, {"port": 139, "protocol": "tcp", "comment": "NetBIOS"}, 445,
                {"port": "5353", "protocol": "udp"}]
    assert ports(declared, "file_server") == {"tcp": [139, 445], "udp": [5353]}


@pytest.mark.parametrize("declared", [[], None])
def test_no_ports(declared: Any) -> None:
    assert ports(declared, "apt_cache") == {"tcp": [], "udp": []}


@pytest.mark.parametrize("declared, fragment", [
    ([{"port": 0}], "entry 0: port 0 is not a port number"),
    ([70000], "port 70000 is not a port number"),
    (["3142/tcp"], "port '3142/tcp' is not a port number"),
    ([True], "port True is not a port number"),
    ([{"port": 631, "protocol": "sctp"}], "protocol 'sctp' is not tcp or udp"),
    ([{"protocol": "tcp"}], "has no port"),
    ([{"port": 631, "proto": "udp"}], "unknown keys ['proto']"),
    ({"port": 631}, "is not a list"),
    ("631", "is not a list"),
])
def test_bad_ports_name_the_role_variable(declared: Any, fragment: str) -> None:
    with pytest.raises(AnsibleFilterError) as error:
        ports(declared, "print_server")
    assert "print_server__firewall_ports" in str(error.value) and fragment in str(error.value)


@pytest.mark.parametrize("service", ["Apt", "1cache", "apt-cache", "", None, "a/b"])
def test_bad_service_names(service: Any) -> None:
    with pytest.raises(AnsibleFilterError, match="is not a role name"):
        ports([3142], service)


def test_root_without_admins_is_a_lockout() -> None:
    why = lockout("root", "no", [], [])
    assert "common__sshd_permit_root_login" in why and "cartable_admins" in why


@pytest.mark.parametrize("permit", [False, "no", "No"])
def test_root_login_refused_names_the_admins(permit: Any) -> None:
    why = lockout("root", permit, [{"name": "jdupont", "ssh_keys": [KEY]}], [])
    assert "Set ansible_user to an administrator of cartable_admins (jdupont)" in why


@pytest.mark.parametrize("user, permit, admins, kept", [
    ("root", "prohibit-password", [], []),
    ("root", True, [], []),
    ("jdupont", "no", [{"name": "jdupont", "ssh_keys": [KEY]}], []),
    ("cartable", "no", [], ["cartable"]),
])
def test_a_way_in_remains(user: str, permit: Any, admins: list, kept: list) -> None:
    assert lockout(user, permit, admins, kept) == ""


@pytest.mark.parametrize("admins", [
    [{"name": "jdupont", "ssh_keys": [KEY], "state": "absent"}],
    [{"name": "jdupont", "ssh_keys": []}],
    [{"name": "jdupont", "ssh_keys": [" "]}],
    [{"name": "mmartin", "ssh_keys": [KEY]}],
    "jdupont",
])
def test_connection_user_without_a_key_is_a_lockout(admins: Any) -> None:
    why = lockout("jdupont", "no", admins, [])
    assert "Ansible connects as 'jdupont' (ansible_user)" in why and "validate_inventory__kept_logins" in why


@pytest.mark.parametrize("user, permit", [("", "no"), (None, "no"), ("root", 3)])
def test_bad_access_inputs(user: Any, permit: Any) -> None:
    with pytest.raises(AnsibleFilterError):
        lockout(user, permit, [], [])


facts_filters = _filters("cartable_facts")
interfaces = facts_filters["cartable_network_interfaces"]
duplicates = facts_filters["cartable_duplicates"]
FACTS = {
    "interfaces": ["lo", "eth0", "eth1", "eth0.10"],
    "lo": {"ipv4": {"address": "127.0.0.1"}},
    "eth0": {"ipv4": {"address": "10.35.0.1"}},
    "eth1": {"ipv4": {"address": "192.0.2.5"}, "ipv4_secondaries": [{"address": "10.35.1.1"}]},
    "eth0_10": {"ipv4": {"address": "10.35.2.1"}},
}


def test_interfaces_by_address_secondary_and_vlan() -> None:
    addresses = {"pedagogical": "10.35.0.1", "administrative": "10.35.1.1", "wifi": "10.35.2.1",
                 "missing": "10.35.9.1"}
    assert interfaces(FACTS, addresses) == {"pedagogical": "eth0", "administrative": "eth1", "wifi": "eth0.10"}


@pytest.mark.parametrize("facts, addresses, fragment", [
    ({}, {}, "gather_facts"),
    ({"interfaces": "eth0"}, {}, "gather_facts"),
    (FACTS, ["10.35.0.1"], "is not a mapping"),
])
def test_interfaces_bad_input(facts: Any, addresses: Any, fragment: str) -> None:
    with pytest.raises(AnsibleFilterError, match=fragment):
        interfaces(facts, addresses)


def test_duplicates() -> None:
    assert duplicates(["b", "a", "b", None, None, "", "", "a", "c"]) == ["a", "b"]
    assert duplicates([]) == []
    with pytest.raises(AnsibleFilterError, match="is not a list"):
        duplicates("aa")


network_list = facts_filters["cartable_school_network_list"]
school_hosts = facts_filters["cartable_school_hosts"]
NETWORKS = {"pedagogical": {"subnet": "10.35.0.0/24", "dhcp_start": "10.35.0.128"},
            "administrative": {"subnet": "10.35.1.0/27"}}


def test_school_network_list() -> None:
    result = network_list(NETWORKS, {"pedagogical": "10.35.0.1"}, {"pedagogical": "eth0"})
    assert [n["name"] for n in result] == ["administrative", "pedagogical"]
    assert result[1] == {"subnet": "10.35.0.0/24", "dhcp_start": "10.35.0.128", "name": "pedagogical",
                         "address": "10.35.0.1", "interface": "eth0", "netmask": "255.255.255.0",
                         "reverse_zone": "0.35.10.in-addr.arpa"}
    assert result[0]["address"] is None and result[0]["interface"] is None
    assert result[0]["netmask"] == "255.255.255.224"


@pytest.mark.parametrize("networks, addresses, fragment", [
    ({"wifi": {"gateway": "10.0.0.1"}}, {}, "cartable_school_networks.wifi"),
    ([], {}, "cartable_school_networks"),
    (NETWORKS, None, "cartable_addresses"),
])
def test_school_network_list_bad_input(networks: Any, addresses: Any, fragment: str) -> None:
    with pytest.raises(AnsibleFilterError, match=fragment):
        network_list(networks, addresses, {})


def test_school_hosts() -> None:
    hostvars = {"srv": {"cartable_mac": "52-54-00-99-00-01"},
                "0999999x-sdi09": {"ansible_host": "10.213.0.20", "cartable_network": "pedagogical",
                                   "cartable_mac": "5254.0099.0020"},
                "0999999x-mfp01": {"ansible_host": "10.213.1.10", "cartable_network": "administrative"}}
    result = school_hosts(["srv", "0999999x-sdi09", "0999999x-mfp01"], hostvars, "srv", ["10.213.0.1", "10.213.1.1"])
    assert [h["inventory_hostname"] for h in result] == ["0999999x-mfp01", "0999999x-sdi09", "srv"]
    assert result[0] == {"name": "0999999x-mfp01", "inventory_hostname": "0999999x-mfp01",
                         "addresses": ["10.213.1.10"], "network": "administrative", "mac": None, "server": False}
    assert result[1]["mac"] == "52:54:00:99:00:20"
    assert result[2]["addresses"] == ["10.213.0.1", "10.213.1.1"] and result[2]["network"] is None
    assert result[2]["server"] and result[2]["mac"] == "52:54:00:99:00:01"
    with pytest.raises(AnsibleFilterError, match="cartable_mac"):
        school_hosts(["x"], {"x": {"cartable_mac": "52:54:00"}}, "srv", [])
    with pytest.raises(AnsibleFilterError, match="is not a list"):
        school_hosts("srv", hostvars, "srv", [])


egress = _filters("cartable_firewall")["cartable_firewall_egress"]


@pytest.mark.parametrize("declared", [None, {}, []])
def test_no_egress_restriction(declared: Any) -> None:
    assert egress(declared, "school_proxy") == {}


def test_egress_sorted_unique_with_default_protocol() -> None:
    declared = {"user": "proxy", "destinations": [
        {"address": "100.64.35.11", "port": "3128"}, {"address": "100.64.35.10", "port": 3128},
        {"address": "100.64.35.10", "port": 3128, "protocol": "tcp"}]}
    assert egress(declared, "school_proxy") == {"user": "proxy", "destinations": [
        {"address": "100.64.35.10", "port": 3128, "protocol": "tcp"},
        {"address": "100.64.35.11", "port": 3128, "protocol": "tcp"}]}


@pytest.mark.parametrize("declared, fragment", [
    ({"user": "proxy", "destinations": []}, "must be a non-empty list"),
    ({"user": "Proxy user", "destinations": [{"address": "10.0.0.1", "port": 1}]}, "not a system user"),
    ({"user": "proxy", "destinations": [{"address": "academic-proxy", "port": 3128}]},
     "'academic-proxy' is not an IP address"),
    ({"user": "proxy", "destinations": [{"address": "10.0.0.1", "port": 0}]}, "port 0 is not a port"),
    ({"user": "proxy", "destinations": [{"address": "10.0.0.1", "port": 53, "protocol": "icmp"}]},
     "protocol 'icmp'"),
    ({"user": "proxy", "destinations": [{"address": "10.0.0.1"}]}, "must be {address, port, protocol}"),
    ({"user": "proxy", "to": []}, "unknown keys ['to']"),
])
def test_bad_egress_named(declared: Any, fragment: str) -> None:
    with pytest.raises(AnsibleFilterError) as error:
        egress(declared, "school_proxy")
    assert "egress of school_proxy" in str(error.value)
    assert fragment in str(error.value)
