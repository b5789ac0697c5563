"""Registered post-training transforms: what is done to a trained model before it is evaluated.

A transform is `apply(model, options) -> model` and runs after training and after the trained
artifacts are saved (so `load_artifacts` gives the trained model and the transforms are applied
again from the config). Suites list them in order: `transforms = ["merge"]`.
"""
