"""The seam between the emulator's API state and whatever runs the instances.

The API layer owns the truth (SQLite). After a state change has been committed it calls a
backend method from a worker thread, so that API calls stay fast; an instance only reaches
status Running once boot() has returned. The base class is the "virtual" backend: every method
is a no-op, and instances exist only as rows in the state file.

A key pair attached or detached while an instance runs changes nothing inside it: the backend
only hears about key pairs through the BootSpec of the next boot.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

# Instance addresses (docs/development.md lists the loopback ranges of the project): containers
# publish sshd on CONTAINER_POOL; instances nothing runs take VIRTUAL_POOL, where nothing listens,
# so that a ping or a login meant for one never reaches another emulator's container.
CONTAINER_POOL = ipaddress.IPv4Network("127.0.10.0/24")
VIRTUAL_POOL = ipaddress.IPv4Network("127.0.90.0/24")


@dataclass(frozen=True)
class BootSpec:
    """Everything a backend needs to (re)start one instance."""

    instance_id: str
    address: str            # loopback address from the pool, also reported as PublicIpAddress
    ssh_port: int
    os_type: str            # 'linux' | 'windows'
    public_key: str | None  # OpenSSH public key line of the key pair bound at this boot, None if none
    password: str | None    # current password if one was set (plain, only ever passed to the backend)
    password_login: bool    # False while a key pair is bound (until a password reset turns it back on)

    def __repr__(self) -> str:
        # The password must never reach a log line through an accidental repr().
        return (f"BootSpec(instance_id={self.instance_id!r}, address={self.address!r}, "
                f"ssh_port={self.ssh_port!r}, os_type={self.os_type!r}, "
                f"public_key={'set' if self.public_key else None}, "
                f"password={'***' if self.password else None}, password_login={self.password_login!r})")


class InstanceBackend:
    """Base class and the virtual backend: instances are rows only, every method is a no-op."""

    name = "virtual"

    def boot(self, spec: BootSpec) -> None:
        """The instance (re)starts: apply spec (key, password login) at boot."""

    def halt(self, instance_id: str) -> None:
        """The instance stops."""

    def destroy(self, instance_id: str) -> None:
        """The instance is deleted."""

    def reconcile(self, running: list[BootSpec], known_ids: set[str]) -> None:
        """At server start: make reality match the state (running ones up, unknown ones gone)."""

    def close(self) -> None:
        """Server shutdown. What happens to running instances is the backend's choice (documented there)."""
