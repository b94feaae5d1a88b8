"""Who is asking and what they may do: the four roles and the identity a request is served as."""

from dataclasses import dataclass
from enum import IntEnum


class Role(IntEnum):
    """What a caller may do; each role may do all that the roles below it may.

    * monitor: the service's metrics (GET /metrics) and health, no patient data (a Prometheus's key)
    * viewer: also query, images, explain, subgraph (reads patient data)
    * curator: also what changes the archive over HTTP (nothing yet)
    * admin: also users and the audit trail
    """

    MONITOR = 0
    VIEWER = 1
    CURATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> "Role":
        """A role by its name (monitor, viewer, curator, admin); ValueError otherwise."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {text!r}: use monitor, viewer, curator or admin") from None


@dataclass(frozen=True)
class Identity:
    """A caller: its name (a user, an API key's owner, a token's subject), its role, and how it proved
    it: "key" (an API key of `cxrneo users`), "token" (CXRNEO_API_TOKEN), "oidc" (a single sign-on
    JWT) or "local" (no authentication configured; loopback only)."""

    name: str
    role: Role
    kind: str
