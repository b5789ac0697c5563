"""Registered derived runs: techniques that combine other variants' trained models, one module each.

A suite declares one as `[derived.NAME]` with `name` (the technique), `inputs` (variant names of
the same suite) and the technique's options. For each seed, the runner rebuilds every input
variant from its artifacts (`load_artifacts`) and calls `build(models, options) -> model`; the
result is evaluated and profiled like any trained model and gets a record like any variant.
"""
