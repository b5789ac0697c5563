"""Registered training callbacks, one module each: `build(options) -> Callback` (xmbench.train.hooks).

Suites list them: `train.callbacks = [{ name = ..., ... }]`. A callback may change pair weights,
which pairs train, the batch size and which parameters train, at any step.
"""
