"""Registered losses, one module each: `loss(inputs: LossInput, options) -> LossOutput`.

A loss reads the step's `LossInput` (embeddings by modality, item ids of every row, the logit
scale of each pair, the model, step and progress, a teacher's embeddings) and returns its named
parts; parts named after a modality pair are weighed by `train.pair_weights` in the objective
(xmbench.train.step), other parts are added as they are.
"""
