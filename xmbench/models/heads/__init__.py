"""Registered projection heads: tower features → the shared embedding space, one module each.

A head is `build(in_dim, embed_dim, options) -> nn.Module`; the model L2-normalises its output.
"""
