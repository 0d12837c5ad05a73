"""Provider keys and where they came from; a Tollway virtual key is never one of them.

A shell that runs Claude Code has ``export ANTHROPIC_API_KEY=tw-...`` in it; the gateway
started from that shell must not send the client's virtual key upstream as if it were
the Anthropic key. ``usable_keys`` drops such keys wherever they come from (an environment
variable, the config file, the admin API), and ``crossed_message`` says so.
"""

from __future__ import annotations

from collections.abc import Mapping

from tollway.config import ProviderConfig, ProviderKey, is_virtual_key, resolve_secret
from tollway.providers.base import KeyChoice


def variable_of(key: ProviderKey) -> str | None:
    """``env.NAME`` -> ``NAME``; a value written inline has no variable."""
    return key.value[4:] if key.value.startswith("env.") else None


def usable_keys(
    pc: ProviderConfig, environ: Mapping[str, str] | None = None
) -> tuple[list[KeyChoice], list[ProviderKey]]:
    """(the keys to send upstream, the keys refused because they hold a virtual key)."""
    usable: list[KeyChoice] = []
    crossed: list[ProviderKey] = []
    for k in pc.keys:
        secret = resolve_secret(k.value, environ)
        if is_virtual_key(secret):
            crossed.append(k)
        else:
            usable.append(KeyChoice(k.name, secret, k.weight))
    return usable, crossed


def crossed_message(provider: str, key: ProviderKey) -> str:
    """What start-up prints for a provider key that holds a Tollway virtual key."""
    var = variable_of(key)
    where = f"${var}" if var else f"the inline value of key {key.name!r}"
    return (
        f"provider {provider!r}: {where} holds a Tollway virtual key (tw-...), not a "
        f"provider key; it is never sent upstream. Give {var or 'the key'} the provider's "
        "own key, or unset it in the shell that runs the gateway."
    )


def crossed_env_message(var: str) -> str:
    """A provider variable of zero config that holds a virtual key (and is ignored)."""
    return (
        f"{var} holds a Tollway virtual key (tw-...), not a provider key: ignored, never "
        f"sent upstream (a client's `export {var}=tw-...` in this shell?). Run "
        f"`unset {var}` or set it to the provider's key before starting the gateway."
    )
