"""Who is asking and what they may do: the four roles, the permissions granted to them, and the identity
a request is served as."""

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class Role(IntEnum):
    """What a caller may do; each role may do all that the roles below it may.

    * monitor: the service's metrics (GET /metrics) and health, no patient data (a Prometheus's key)
    * viewer: also query, images, explain, subgraph (reads patient data)
    * curator: also what writes beyond cxrneo over HTTP: keeping similar cases in the PACS (keep)
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


class Permission(StrEnum):
    """An action beyond reading that a route needs; `GRANTED` names the least role that may take it."""

    KEEP = "keep"  # store key objects (similar cases) in the PACS

    @property
    def role(self) -> Role:
        return GRANTED[self]


GRANTED: dict[Permission, Role] = {Permission.KEEP: Role.CURATOR}


@dataclass(frozen=True)
class Identity:
    """A caller: its name (a user, an API key's owner, a token's subject), its role, and how it proved
    it: "key" (an API key of `cxrneo users`), "token" (CXRNEO_API_TOKEN), "oidc" (a single sign-on
    JWT) or "local" (no authentication configured; loopback only)."""

    name: str
    role: Role
    kind: str

    def may(self, permission: Permission) -> bool:
        """Whether this caller's role is granted ``permission``."""
        return self.role >= permission.role
