"""Inventory → lab model: what the lab must create (networks, containers, addresses) from the
generated inventory and tests/lab/topology.yml."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from cartable_lab.common import LAB_DIR, PREFIX, STATE, LabError, ansible_env, load_yaml, run, tool


def read_inventory(path: Path) -> dict:
    """The inventory as `ansible-inventory --list` gives it."""
    if not path.exists():
        raise LabError(f"{path} does not exist: build it with "
                       f"`cartable inventory build {path.parent / 'site.yml'}`")
    proc = run([tool("ansible-inventory"), "-i", str(path), "--list"], env=ansible_env())
    return json.loads(proc.stdout)


def group_hosts(inv: dict, group: str, seen: set | None = None) -> list[str]:
    """Hosts of a group and of its children, in inventory order."""
    seen = seen if seen is not None else set()
    if group in seen or group not in inv:
        return []
    seen.add(group)
    hosts = list(inv[group].get("hosts", []))
    for child in inv[group].get("children", []):
        hosts += [h for h in group_hosts(inv, child, seen) if h not in hosts]
    return hosts


def lab_model(inventory: Path, school: str | None = None) -> dict:
    """What the lab must create, from the inventory and tests/lab/topology.yml."""
    inv = read_inventory(inventory)
    topo = load_yaml(LAB_DIR / "topology.yml")
    hostvars = inv.get("_meta", {}).get("hostvars", {})
    schools: dict[str, list[str]] = {}
    for host in group_hosts(inv, "all"):
        uai = str(hostvars.get(host, {}).get("cartable_school_uai", "")).lower()
        if uai:
            schools.setdefault(uai, []).append(host)
    if school:
        school = school.lower()
        if school not in schools:
            raise LabError(f"school {school} is not in {inventory} (schools: {sorted(schools)})")
    elif len(schools) != 1:
        raise LabError(f"{inventory} holds {len(schools)} schools {sorted(schools)}: "
                       "the lab runs one (give --school UAI)")
    else:
        school = next(iter(schools))
    hosts = schools[school]
    first = hostvars[hosts[0]]
    servers = set(group_hosts(inv, "school_servers"))
    printers = set(group_hosts(inv, "printers"))

    networks: dict[str, dict] = {}
    used: set = set()
    for host in hosts:
        hv = hostvars[host]
        used.add(hv.get("ansible_host"))
        used.update((hv.get("cartable_addresses") or {}).values())
    for index, (name, net) in enumerate(sorted(first["cartable_school_networks"].items())):
        subnet = ipaddress.ip_network(net["subnet"])
        # A school LAN routes nowhere and the controller has no address on it (docker only
        # reserves its "gateway"): the controller reaches the school through its server.
        # Not docker-`internal`: its iptables rules would drop the LAN's broadcasts (DHCP).
        networks[name] = {
            "name": f"{PREFIX}-{school}-{name}",
            "bridge": f"cl-{school[:8]}-{index}",
            "subnet": str(subnet),
            "gateway": docker_gateway(subnet, net, used),
            "internal": False,
            "host_address": False,
            "school_network": name,
        }
    for name, net in topo["networks"].items():
        networks[name] = {"name": f"{PREFIX}-{name}-net", "bridge": net["bridge"], "subnet": net["subnet"],
                          "gateway": net["gateway"], "internal": not net.get("uplink", False),
                          "host_address": True, "school_network": None}

    site_names = list(topo["sites"]["allowed"]) + [n for names in topo["sites"]["blocked"].values()
                                                  for n in names]
    internet_ip = topo["internet"]["addresses"]["internet"]
    file_sites = dict(topo["internet"].get("file_sites") or {})
    etc_hosts = {name: internet_ip for name in [*site_names, *file_sites]}
    proxy = topo["academic_proxy"]

    containers: list[dict] = []
    server_ip = ipaddress.ip_address(topo["school_server_first_address"])
    for host in hosts:
        hv = hostvars[host]
        if host in servers:
            addresses = dict(hv.get("cartable_addresses") or {})
            if not addresses:
                addresses = {first_network_of(networks, hv["ansible_host"]): hv["ansible_host"]}
            addresses["academic"] = str(server_ip)
            server_ip += 1
            role = "server"
        else:
            net = hv.get("cartable_network") or first_network_of(networks, hv["ansible_host"])
            addresses = {net: hv["ansible_host"]}
            role = "printer" if host in printers else "host"
        for net, address in addresses.items():
            if net not in networks:
                raise LabError(f"{host}: network {net!r} is not one of the school's {sorted(networks)}")
            if ipaddress.ip_address(address) not in ipaddress.ip_network(networks[net]["subnet"]):
                raise LabError(f"{host}: {address} is outside {net} {networks[net]['subnet']}")
        # The host's own network first: it carries the MAC address.
        own = hv.get("cartable_network") or first_network_of(networks, hv["ansible_host"])
        order = [own] + [n for n in addresses if n != own]
        # The only way out: the academic WAN for the server, the school server for the others.
        if role == "server":
            default_route = topo["networks"]["academic"]["gateway"]
        else:
            default_route = first["cartable_school_networks"][own]["gateway"]
        containers.append({
            "name": f"{PREFIX}-{host}",
            "host": host,
            "hostname": host,
            "role": role,
            "image": "infra" if role == "printer" else "base",
            "networks": [[n, addresses[n]] for n in order],
            "mac": hv.get("cartable_mac"),
            "default_route": default_route,
            # Workstations and printers resolve through the school server, as its DHCP says
            # (docker's resolver would answer for the internet, not for the school's zone).
            "resolver": None if role == "server" else default_route,
            "search": first.get("cartable_school_domain"),
            # The controller reaches the server on its WAN side, the others through it.
            "ansible_host": addresses["academic"] if role == "server" else hv["ansible_host"],
            "etc_hosts": etc_hosts,
            # ippeveprinter refuses to start without an IPv6 listener (loopback is enough).
            "sysctls": {"net.ipv6.conf.all.disable_ipv6": 0} if role == "printer" else {},
        })
    containers.append({
        "name": f"{PREFIX}-{proxy['name']}", "host": None, "hostname": proxy["name"],
        "role": "academic-proxy", "image": "infra",
        "networks": [[n, a] for n, a in proxy["addresses"].items()], "mac": None,
        "aliases": [proxy["name"]], "etc_hosts": etc_hosts,
    })
    containers.append({
        "name": f"{PREFIX}-{topo['internet']['name']}", "host": None,
        "hostname": topo["internet"]["name"], "role": "internet", "image": "infra",
        "networks": [[n, a] for n, a in topo["internet"]["addresses"].items()], "mac": None,
        "aliases": [topo["internet"]["name"], *site_names, *file_sites], "etc_hosts": {},
        "mounts": [[str(STATE / "www"), "/srv/cartable-lab"]] if file_sites else [],
    })
    return {"school": school, "inventory": str(inventory), "networks": networks,
            "containers": containers, "topology": topo, "site_names": site_names}


def first_network_of(networks: dict, address: str) -> str:
    """The school network whose subnet holds address."""
    for name, net in networks.items():
        if ipaddress.ip_address(address) in ipaddress.ip_network(net["subnet"]):
            return name
    raise LabError(f"{address} is in none of the school's networks")


def docker_gateway(subnet: ipaddress.IPv4Network | ipaddress.IPv6Network, net: dict, used: set) -> str:
    """The address docker's IPAM reserves as a school LAN's "gateway": the highest free address,
    outside the DHCP pool if possible. Nothing holds it (the bridge has no address: the
    controller is not on the school LANs) and the inventory's gateway is the school server."""
    taken = {str(a) for a in used if a} | {str(net.get("gateway"))}
    pool = set()
    if net.get("dhcp_start") and net.get("dhcp_end"):
        start, end = (ipaddress.ip_address(net["dhcp_start"]), ipaddress.ip_address(net["dhcp_end"]))
        pool = {str(ipaddress.ip_address(i)) for i in range(int(start), int(end) + 1)}
    hosts = list(subnet.hosts())
    for avoid_pool in (True, False):
        for address in reversed(hosts):
            if str(address) in taken or (avoid_pool and str(address) in pool):
                continue
            return str(address)
    raise LabError(f"no free address for the controller in {subnet}")
