"""Registered batch samplers: which items each training step sees, one module each.

A sampler is built as `build(split, batch_size, seed, options)` (the training split: its length, its
`ids`, and `present`, which items have which modality) and offers `next() -> rows`
(dataset rows of the next batch; `batch_size` is an attribute a callback may change),
`observe(rows, per_item_loss)` (per-item statistics after each step: importance sampling and
hard-negative mining read them), and `state_dict()` / `load_state_dict()` for resumable runs.
"""
