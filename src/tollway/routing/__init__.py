"""Routing: rules and aliases, load balancing, circuit breakers, explanations.

``settings`` is the config section; ``rules`` compiles it; ``balance`` and ``breaker``
hold the state the dispatcher (pipeline/dispatch.py) consults on every attempt.
"""
