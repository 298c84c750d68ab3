"""Shared pytest configuration of the emulator tests."""

from __future__ import annotations


def pytest_configure(config):
    # Tests that start real instance containers; deselect with -m "not podman" where podman is missing.
    config.addinivalue_line("markers", "podman: starts podman containers from the instance image")
