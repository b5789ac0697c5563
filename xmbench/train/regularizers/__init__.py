"""Registered regularisers of the embedding space, one module each: `reg(inputs: LossInput, options) -> Tensor`.

Each returns its term already multiplied by its `weight` option; the objective adds it to the
loss and logs it as the part `reg/<name>`. Suites list them: `train.regularizers = [{ name = ..., weight = ... }]`.
"""
