"""Registered temperatures: how the logit scale (1 / temperature) of each modality pair is set, one module each.

A builder `build(pairs, options) -> module` returns a module with `scales(pairs) -> {"a-b": scale}`
and `clamp()` (called after every optimizer step). The model owns it (`model.temperature`).
"""
