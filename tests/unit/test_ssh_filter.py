"""Tests of filter_plugins/cartable_ssh.py: the management path through the school server."""

from __future__ import annotations

import shlex

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import filters_of

jump = filters_of("cartable_ssh")["cartable_ssh_jump"]


def proxy_command(option: str) -> list[str]:
    words = shlex.split(option)
    assert words[0] == "-o" and words[1].startswith("ProxyCommand=") and len(words) == 2
    return shlex.split(words[1][len("ProxyCommand="):])


def test_the_bare_server_address():
    assert proxy_command(jump("s", {"s": {"ansible_host": "10.35.0.1"}})) == [
        "ssh", "-o", "ControlMaster=no", "-o", "BatchMode=yes", "-W", "%h:%p", "10.35.0.1"]


def test_user_port_key_and_options_of_the_server_are_used():
    hv = {"s": {"ansible_host": "100.64.35.101", "ansible_user": "cartable", "ansible_port": "2222",
                "ansible_ssh_private_key_file": "/tmp/my key",
                "cartable_ssh_options": "-o UserKnownHostsFile=/x/known_hosts -o IdentitiesOnly=yes"}}
    words = proxy_command(jump("s", hv))
    assert words[:5] == ["ssh", "-o", "UserKnownHostsFile=/x/known_hosts", "-o", "IdentitiesOnly=yes"]
    assert words[words.index("-i") + 1] == "/tmp/my key"
    assert words[words.index("-p") + 1] == "2222"
    assert words[-3:] == ["-W", "%h:%p", "cartable@100.64.35.101"]


def test_percent_tokens_of_the_inner_ssh_are_escaped():
    words = proxy_command(jump("s", {"s": {"ansible_host": "h",
                                           "cartable_ssh_options": "-o ControlPath=/cp/%C"}}))
    assert "ControlPath=/cp/%%C" in words and words[-3:-1] == ["-W", "%h:%p"]


def test_a_server_without_address_is_reached_by_its_name():
    assert proxy_command(jump("srv", {"srv": {}}))[-1] == "srv"


@pytest.mark.parametrize("server, hostvars, message", [
    ("", {}, "is not a host name"),
    (None, {}, "is not a host name"),
    ("missing", {"s": {}}, "'missing' is not in the inventory"),
    ("s", {"s": {"ansible_port": "ssh"}}, "ansible_port of s is 'ssh'"),
    ("s", {"s": {"cartable_ssh_options": ["-v"]}}, "cartable_ssh_options of s is list"),
])
def test_bad_values_are_named(server, hostvars, message):
    with pytest.raises(AnsibleFilterError, match=message):
        jump(server, hostvars)
