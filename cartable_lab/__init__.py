"""The Cartable lab: one school of the lab inventory in containers, with its upstream.

`tests/lab/lab.py` is its command line (`cartable_lab.cli.main`); `python -m cartable_lab` is the
same. The modules, by concern:

    common      paths and constants, LabError, log/stage timings, run/docker/parallel, sha, tools
    engine      docker.io, debootstrap and sysctls installed, dockerd answering
    images      the base and infra images, tagged by the hash of their recipe (tests/lab/image/)
    model       inventory → lab model (networks, containers, addresses; docker_gateway)
    infra       configuration scripts of the internet, the academic proxy, printers, routes
    containers  networks and containers: up, down, status
    connection  SSH keys, known_hosts, the connection inventory, playbook runs, ssh
    dhcp        a DHCP client plugged into a school LAN without docker's IPAM
    cli         the argparse command line
"""
