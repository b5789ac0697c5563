"""LoRA merging: fold each peft adapter into its base weights, so inference runs the plain backbone."""
from __future__ import annotations

from xmbench.registry import TRANSFORMS


@TRANSFORMS.register("merge")
def merge(model, options):
    """Merge peft adapters into the base weights (W + B·A·alpha/r): same embeddings, no adapter at inference."""
    from peft import PeftModel

    parents = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
               if isinstance(child, PeftModel)]
    for parent, name, child in parents:
        setattr(parent, name, child.merge_and_unload())
    return model
