"""Evaluate stage: retrieval metrics for embeddings and for models."""
