"""filter_plugins/cartable_history.py, called directly."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import filters_of

hosts = filters_of("cartable_history")["cartable_history_hosts"]


def test_hosts_with_a_mac_sorted_by_name() -> None:
    given = [
        {"inventory_hostname": "0350607v-sdi02", "cartable_mac": "52:54:00:35:07:12", "ansible_host": "10.35.0.11"},
        {"inventory_hostname": "0350607v-srv", "cartable_mac": "52:54:00:35:07:01", "ansible_host": "100.64.35.101",
         "cartable_addresses": {"pedagogical": "10.35.0.1", "administrative": "10.35.1.1"}},
        {"inventory_hostname": "0350607v-sdi01", "cartable_mac": "52:54:00:35:07:11", "ansible_host": "10.35.0.10"},
        {"inventory_hostname": "0350607v-prj01", "ansible_host": "10.35.0.40"},
    ]
    assert hosts(given) == [
        {"name": "0350607v-sdi01", "mac": "52:54:00:35:07:11", "addresses": ["10.35.0.10"]},
        {"name": "0350607v-sdi02", "mac": "52:54:00:35:07:12", "addresses": ["10.35.0.11"]},
        {"name": "0350607v-srv", "mac": "52:54:00:35:07:01", "addresses": ["10.35.0.1", "10.35.1.1"]},
    ]


def test_upper_case_mac_is_lowered_and_none_is_empty() -> None:
    assert hosts(None) == []
    assert hosts([{"inventory_hostname": "a", "cartable_mac": "52:54:00:AA:07:11"}])[0]["mac"] == "52:54:00:aa:07:11"


@pytest.mark.parametrize("given, fragment", [
    ([{"inventory_hostname": "pc1", "cartable_mac": "52-54-00-35-07-11"}], "pc1: cartable_mac '52-54-00-35-07-11'"),
    (["pc1"], "'pc1' is not a host's variables"),
])
def test_bad_input_named(given: list, fragment: str) -> None:
    with pytest.raises(AnsibleFilterError) as error:
        hosts(given)
    assert fragment in str(error.value)
