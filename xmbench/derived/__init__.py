"""Registered derived runs: techniques that combine other variants' trained models, one module each.

A suite declares one as `[derived.NAME]` with `name` (the technique), `inputs` (variant names of
the same suite) and the technique's options. For each seed, the runner rebuilds every input
variant from its artifacts (`load_artifacts`) and calls `build(models, val=..., eval_config=...,
options=...) -> model` (the validation split and the evaluation settings, for techniques fitted on
validation: weighted scoring, greedy soups); the result is evaluated and profiled like any
trained model and gets a record like any variant.
"""
