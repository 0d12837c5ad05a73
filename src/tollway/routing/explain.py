"""``POST /api/routing/explain``: which rule and target a request would get, and why.

Nothing is sent upstream and nothing is reserved: the answer is the router's plan for a
request of that key, model, headers and size, with the rules tried before the one that
fired (and why each did not), the candidates in the order they would be tried (each key
with its circuit's state), and the candidates left out.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tollway.errors import GatewayError
from tollway.pipeline.route import preferred_dialect

if TYPE_CHECKING:
    from tollway.governance.entities import KeyRecord
    from tollway.pipeline.handler import Call, Gateway


def explain(
    gateway: Gateway, call: Call, key: KeyRecord, model: str, dialect: str
) -> dict[str, Any]:
    router, dispatcher = gateway.router, gateway.dispatcher
    facts = gateway.facts_of(key, model, call.headers, call.body)
    match, skipped = router.rules.explain(facts)
    out: dict[str, Any] = {
        "key": key.name,
        "model": model,
        "client": facts.client,
        "tokens": facts.tokens,
        "budget_used_pct": facts.budget_used_pct(),
        "rule": match.rule.name if match else None,
        "rule_source": match.rule.source if match else None,
        "matched_because": match.why if match else [],
        "rules_not_matched": [{"rule": name, "why": why} for name, why in skipped],
    }
    try:
        plan = router.plan(model, dialect, key, facts, gateway.rng, dispatcher.pinned(call))
    except GatewayError as err:
        out.update(target=None, candidates=[], error={
            "status": err.status, "type": err.anthropic_type, "message": err.message})  # fmt: skip
        return out
    call.plan = plan
    now = dispatcher.clock()
    pin = dispatcher.affinity.get(key.id, call.session, now)
    out["session"] = call.session
    out["pinned"] = None if pin is None else {
        "provider": pin.provider, "key": pin.key, "model": pin.model}  # fmt: skip
    order = dispatcher.tries(call, plan)
    candidates = []
    for index, candidate in enumerate(plan.candidates):
        target = candidate.target
        keys = []
        for t, k, _why, i in order:
            if i != index:
                continue
            view = dispatcher.breakers.view((t.provider.name, k.name, t.model), now)
            keys.append({"name": k.name, "circuit": view.state, "failures": view.failures,
                         "reopens_in_s": round(view.reopens_in_s, 3),
                         "try": order.index((t, k, _why, i)) + 1})  # fmt: skip
        translator = target.translator
        candidates.append({
            "provider": target.provider.name, "model": target.model, "why": candidate.why,
            "translate": f"{dialect} -> {preferred_dialect(target.provider)}"
            if translator is not None else None,
            "keys": keys,
        })  # fmt: skip
    out.update(
        target=candidates[0],
        candidates=candidates,
        refused=[{"target": name, "why": why} for name, why in plan.skipped],
        max_attempts=dispatcher.settings.retry.max_attempts,
    )
    return out


def body_for(model: str, doc: dict[str, Any] | None, tokens: int | None) -> bytes:
    """The body the rules measure: the one given, else one of about ``tokens`` tokens."""
    if doc is not None:
        return json.dumps({**doc, "model": model}).encode()
    filler = "x" * (4 * tokens) if tokens else ""
    return json.dumps({"model": model, "messages": [{"role": "user", "content": filler}]}).encode()
