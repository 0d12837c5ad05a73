"""Audit: what each agent did (actions), a tool policy enforced by a PreToolUse hook, and a
hash-chained, signed log of requests, actions, decisions and admin changes.

    actions.py  tool calls in responses and their results in the next request (pure)
    observe.py  the request path's part: keep tool-call SSE events by reference
    policy.py   allow / ask / deny rules over tools, commands, paths, domains (pure)
    hook.py     POST /hooks/claude-code/pre-tool-use, and the policy in force
    chain.py    the SHA-256 chain and its verification (pure); signing.py: Ed25519
    log.py      the background log: join, link, write; sinks.py: syslog and webhook
    store.py    the tables and the session timeline; verify.py: `tollway audit verify`
"""
