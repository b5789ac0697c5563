"""Registered augmentations, one module each, applied on the fly to every training batch.

An augmentation is built as `build(split, options)` and called as `augment(batch, generator) ->
batch` in the engine's data phase, with a generator seeded per run (so the same seed gives the
same augmented batches, and a resumed run continues its stream). `batch.item_ids` tell which
items the rows are, so an augmentation that needs the raw data (a waveform, a caption string)
can look it up through the split it was built with. Suites list them in order:
`train.augment = [{ name = ..., ... }]`; their cost shows in the step log's data phase.
"""
