"""Molecule verify of the relay role: one real relay job, as `cartable campaign run --relay`
carries it: ansible-runner transmit here (the controller), the relay's `ansible-runner
worker` in the instance (`docker exec` standing for the controller's ssh), process here.
With a strategy (argument 2), the job's environment sets ANSIBLE_STRATEGY as the campaign does
for `cartable_relay_strategy` (mitogen_linear: the wrapper's ANSIBLE_STRATEGY_PLUGINS).
Prints the job's status, rc and the tasks that ran ok, as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import ansible_runner

PLAY = """\
- name: A workstation play on the relay's Ansible
  hosts: all
  gather_facts: true
  tasks:
    - name: The relay's ansible-core and its filters' libraries
      ansible.builtin.assert:
        that:
          - ansible_version.full == '2.19.14'
          - "'10.35.0.17/24' | ansible.utils.ipaddr('network') == '10.35.0.0'"
    - name: A community.general module (check mode)
      community.general.timezone:
        name: Europe/Paris
      check_mode: true
    - name: An ansible.posix module (check mode)
      ansible.posix.authorized_key:
        user: root
        key: "{{ lookup('file', '/etc/ssh/ssh_host_ed25519_key.pub') }}"
      check_mode: true
    - name: Write the marker
      ansible.builtin.copy:
        dest: /tmp/relay-job-marker
        content: "{{ ansible_version.full }} {{ ansible_python_version }} {{ lookup('ansible.builtin.env', 'ANSIBLE_STRATEGY') | default('linear', true) }}\\n"
        mode: "0644"
"""


def main(container: str, strategy: str = "") -> int:
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "job"
        (job / "project").mkdir(parents=True)
        (job / "inventory").mkdir()
        if strategy:
            (job / "env").mkdir()
            (job / "env" / "envvars").write_text(json.dumps({"ANSIBLE_STRATEGY": strategy}),
                                                 encoding="utf-8")
        (job / "project" / "play.yml").write_text(PLAY, encoding="utf-8")
        (job / "inventory" / "hosts.yml").write_text(
            "all:\n  hosts:\n    lan-host:\n      ansible_connection: local\n"
            "      ansible_python_interpreter: /usr/bin/python3\n", encoding="utf-8")
        worker = subprocess.Popen(["docker", "exec", "-i", container, "ansible-runner", "worker"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert worker.stdin is not None
        ansible_runner.run(private_data_dir=str(job), playbook="play.yml", streamer="transmit",
                           _output=worker.stdin, quiet=True)
        worker.stdin.close()
        ok: list[str] = []

        def handler(event: dict) -> bool:
            if event.get("event") == "runner_on_ok":
                ok.append(event["event_data"]["task"])
            return True

        result = ansible_runner.run(private_data_dir=str(Path(tmp) / "out"), streamer="process",
                                    _input=worker.stdout, event_handler=handler, quiet=True)
        worker.wait()
        # the worker's final status and rc as the processor wrote them (its attributes lag)
        artifacts = Path(result.artifact_dir)
        status = (artifacts / "status").read_text(encoding="utf-8").strip()
        rc = int((artifacts / "rc").read_text(encoding="utf-8").strip())
        print(json.dumps({"status": status, "rc": rc, "ok": ok}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
