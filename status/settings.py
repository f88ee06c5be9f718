"""``[Status]``: where the status page listens and who may read it (parsed in engine.config)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StatusSettings:
    """``[Status]``: the daemon's own status page and metrics (off by default)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8787  # 0: a free port, logged at start-up
    # Keyring entry of the token a client must send; required when ``host`` is not loopback.
    token: str | None = None
    refresh_seconds: int = 5
    # The page turns amber when the oldest work waiting for a decision is older than this.
    stuck_after_hours: float = 24.0

    @property
    def loopback(self) -> bool:
        """True when only this machine can connect."""
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """``127.0.0.0/8``, ``::1`` or ``localhost``: addresses other machines cannot reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
