"""Registered fusion models: cross-modal interaction on top of the reference model, one module each.

A fusion technique is `build(model, options) -> model`: it wraps the built reference model (towers,
adapters, heads) and adds interaction between modalities. A fused model cannot pre-encode its
gallery, so it re-ranks the bi-encoder's top-k: it offers `score` (training: every in-batch pair)
and `rerank` with `rerank_k` (evaluation and the query path: the first stage's top-k candidates
re-scored; see xmbench/eval/rerank.py). Suites choose one: `model.fusion = { name = ..., ... }`.
"""
