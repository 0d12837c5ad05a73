"""Tool policy: allow, ask or deny one proposed tool call. Pure: no I/O, no clock.

    decision = evaluate(policy, call, Subject(key="alice", team="platform"), cwd="/w/p")

Rules come from four scopes: every key (``rules``), the key's customer, its team and the
key itself. Every matching rule counts and the strictest wins (deny, then ask, then
allow), so a team or key cannot loosen what its customer or the gateway denies. With no
rule matching, the most specific scope's ``default`` answers (``defer``: no decision,
the agent's own permission settings apply).

Paths are judged as text: ``..`` is resolved lexically, a relative path is taken from the
session's working directory, and nothing is looked up on disk (a symlink inside the root
counts as inside: the hook cannot see the agent's file system).
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tollway.audit.actions import ToolCall

Verdict = Literal["allow", "ask", "deny"]
Default = Literal["allow", "ask", "deny", "defer"]
_RANK = {"allow": 0, "ask": 1, "deny": 2}
_SEGMENTS = re.compile(r"&&|\|\||;|\||\n")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_pattern(value: str) -> str:
    if value.startswith("regex:"):
        try:
            re.compile(value[6:])
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
    return value


class ToolRule(_Model):
    """One rule: the tool glob, and conditions that must all hold for it to match."""

    action: Verdict
    tool: str = "*"  # glob over the tool name: Bash, Edit|Write as two rules, mcp__github__*
    command: list[str] | None = None  # globs or regex: over a shell command (or a part of it)
    paths_outside: str | None = None  # a root; matches a call naming a path outside it
    paths: list[str] | None = None  # globs over the paths a call names, e.g. "*/.env"
    domains: list[str] | None = None  # globs over a web tool's host, e.g. "*.example.com"
    reason: str | None = None  # what the agent reads when denied or asked

    @field_validator("command", "paths", "domains", mode="before")
    @classmethod
    def _listed(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("command")
    @classmethod
    def _patterns(cls, value: list[str] | None) -> list[str] | None:
        for pattern in value or []:
            _check_pattern(pattern)
        return value

    @field_validator("paths_outside")
    @classmethod
    def _root(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("/") or value == "{cwd}"):
            raise ValueError("a root is an absolute path or {cwd} (the session's directory)")
        return value


class PolicyScope(_Model):
    default: Default | None = None
    rules: list[ToolRule] = Field(default_factory=list)


class ToolPolicy(_Model):
    """The ``tool_policy:`` section (and what ``PUT /api/tool-policy`` takes)."""

    default: Default = "defer"
    rules: list[ToolRule] = Field(default_factory=list)
    customers: dict[str, PolicyScope] = Field(default_factory=dict)
    teams: dict[str, PolicyScope] = Field(default_factory=dict)
    keys: dict[str, PolicyScope] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Subject:
    """Whose call it is, by name."""

    key: str | None = None
    team: str | None = None
    customer: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    decision: Default
    reason: str | None = None
    rule: str | None = None  # where the deciding rule is, e.g. keys.alice.rules[0]


def evaluate(policy: ToolPolicy, call: ToolCall, who: Subject, cwd: str | None = None) -> Decision:
    scopes: list[tuple[str, PolicyScope]] = [("", PolicyScope(default=policy.default,
                                                             rules=policy.rules))]  # fmt: skip
    for label, table, name in (("customers", policy.customers, who.customer),
                               ("teams", policy.teams, who.team),
                               ("keys", policy.keys, who.key)):  # fmt: skip
        if name is not None and name in table:
            scopes.append((f"{label}.{name}.", table[name]))
    best: tuple[ToolRule, str] | None = None
    for prefix, scope in scopes:
        for i, rule in enumerate(scope.rules):
            if matches(rule, call, cwd) and (
                best is None or _RANK[rule.action] > _RANK[best[0].action]
            ):
                best = (rule, f"{prefix}rules[{i}]")
    if best is not None:
        rule, where = best
        reason = rule.reason or _why(rule, call)
        return Decision(rule.action, f"Tollway tool policy ({where}): {reason}", where)
    default = next(s.default for _p, s in reversed(scopes) if s.default is not None)
    if default in ("deny", "ask"):
        return Decision(default, f"Tollway tool policy: {call.tool} is not allowed by any "
                                 f"rule (default: {default})", "default")  # fmt: skip
    return Decision(default, None, "default")


def matches(rule: ToolRule, call: ToolCall, cwd: str | None = None) -> bool:
    if not fnmatch.fnmatchcase(call.tool, rule.tool):
        return False
    if rule.command is not None:
        if call.command is None or not any(_command_matches(p, call.command) for p in rule.command):
            return False
    if rule.paths is not None:
        if not any(fnmatch.fnmatchcase(path, g) for path in _all_paths(call) for g in rule.paths):
            return False
    if rule.paths_outside is not None:
        root = cwd if rule.paths_outside == "{cwd}" else rule.paths_outside
        paths = _all_paths(call)
        if not paths:
            return False
        # No directory to compare with ({cwd} unknown): every path counts as outside.
        if root is not None and all(inside(path, root, cwd) for path in paths):
            return False
    if rule.domains is not None:
        host = (call.domain or "").lower()
        if not host or not any(fnmatch.fnmatchcase(host, d.lower()) for d in rule.domains):
            return False
    return True


def _command_matches(pattern: str, command: str) -> bool:
    parts = [command, *(p.strip() for p in _SEGMENTS.split(command))]
    if pattern.startswith("regex:"):
        regex = re.compile(pattern[6:])
        return any(regex.search(p) for p in parts)
    return any(fnmatch.fnmatchcase(p, pattern) for p in parts if p)


def _all_paths(call: ToolCall) -> list[str]:
    paths = list(call.paths)
    if call.command is not None:
        paths += command_paths(call.command)
    return paths


def command_paths(command: str) -> list[str]:
    """Words of a shell command that look like paths (absolute, home, or climbing up)."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        words = command.split()
    out = []
    for word in words:
        if "=" in word and not word.startswith(("/", ".", "~")):
            word = word.partition("=")[2]  # --out=/etc/x, VAR=/path
        if word.startswith(("/", "~")) or word == ".." or word.startswith("../") or "/../" in word:
            out.append(word)
    return out


def inside(path: str, root: str, cwd: str | None = None) -> bool:
    """Whether ``path`` names something under ``root``, judged as text."""
    if not path or path.startswith("~") or "$" in path or "\x00" in path:
        return False  # the shell would expand it: unknowable here, so outside
    if not path.startswith("/"):
        base = cwd if cwd is not None and cwd.startswith("/") else root
        path = base.rstrip("/") + "/" + path
    norm = _norm(path)
    top = _norm(root)
    return norm == top or top == "/" or norm.startswith(top + "/")


def _norm(path: str) -> str:
    return posixpath.normpath(re.sub(r"^/+", "/", path))


def _why(rule: ToolRule, call: ToolCall) -> str:
    if rule.command is not None and call.command is not None:
        return f"{call.tool} command {call.command!r} matches {', '.join(rule.command)}"
    if rule.paths_outside is not None:
        return f"{call.tool} names a path outside {rule.paths_outside}"
    if rule.paths is not None:
        return f"{call.tool} names a path matching {', '.join(rule.paths)}"
    if rule.domains is not None:
        return f"{call.tool} reaches {call.domain}, which matches {', '.join(rule.domains)}"
    return f"{call.tool} matches {rule.tool}"
