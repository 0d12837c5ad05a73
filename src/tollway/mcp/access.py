"""Which tools a virtual key may see and call: pure, resolved from the key's hierarchy.

Deny by default. A tool (its full name ``<server>__<tool>``) is permitted when a rule of
the key, its team or its customer allows it (directly or through a group) and no rule of
any of them denies it. A rule that cannot be resolved (a group that does not exist, a
team or customer the key names but the gateway does not know) permits nothing::

    policy = resolve(access, groups, key, team, customer)
    policy.permits("files__read_file")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from tollway.governance.entities import CustomerRecord, KeyRecord, TeamRecord
from tollway.mcp.settings import AccessConfig, AccessRule


@dataclass(frozen=True, slots=True)
class Policy:
    allow: tuple[str, ...]
    deny: tuple[str, ...]
    problem: str | None = None  # set when the permissions could not be resolved

    def permits(self, tool: str) -> bool:
        if self.problem is not None:
            return False
        if any(fnmatchcase(tool, pattern) for pattern in self.deny):
            return False
        return any(fnmatchcase(tool, pattern) for pattern in self.allow)


NOTHING = Policy((), (), None)


def _closed(problem: str) -> Policy:
    return Policy((), (), problem)


def resolve(
    access: AccessConfig | Sequence[AccessConfig],
    groups: dict[str, list[str]],
    key: KeyRecord,
    team: TeamRecord | None,
    customer: CustomerRecord | None,
) -> Policy:
    """The key's policy; ``team``/``customer`` are what the key's ids point to (or None).

    ``access`` may be several rule sets (the config's and the admin API's): all apply.
    """
    layers = [access] if isinstance(access, AccessConfig) else list(access)
    if key.team_id and team is None:
        return _closed(f"the key's team {key.team_id} is not known")
    owner_customer = team.customer_id if team else key.customer_id
    if owner_customer and customer is None:
        return _closed(f"the key's customer {owner_customer} is not known")
    rules: list[tuple[str, AccessRule]] = []
    for layer in layers:
        for label, table, name in (
            ("key", layer.keys, key.name),
            ("team", layer.teams, team.name if team else None),
            ("customer", layer.customers, customer.name if customer else None),
        ):
            if name is not None and name in table:
                rules.append((f"{label} {name}", table[name]))
    allow: list[str] = []
    deny: list[str] = []
    for label, rule in rules:
        allow += rule.allow
        deny += rule.deny
        for group in rule.groups:
            if group not in groups:
                return _closed(f"{label} names tool group {group!r}, which does not exist")
            allow += groups[group]
    return Policy(tuple(allow), tuple(deny))
