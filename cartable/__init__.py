"""Cartable: school data → a stable, reviewable Ansible inventory, and the roles that use it."""

__version__ = "0.1.0"
