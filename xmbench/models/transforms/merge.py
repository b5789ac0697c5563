"""LoRA merging: fold each peft adapter into its base weights, so inference runs the plain backbone."""
from __future__ import annotations

from xmbench.registry import TRANSFORMS


@TRANSFORMS.register("merge")
def merge(model, options):
    """Merge low-rank adapters into the base weights (W + ΔW): peft's and SoRA's; same embeddings, no adapter at inference.

    Parallel and bottleneck adapters add a non-linear branch: they cannot be folded into a weight and stay.
    """
    import torch
    from peft import PeftModel

    from xmbench.models.adapters._layers import GatedLoraLinear

    children = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()]
    for parent, name, child in children:
        if isinstance(child, PeftModel):
            setattr(parent, name, child.merge_and_unload())
        elif isinstance(child, GatedLoraLinear):
            with torch.no_grad():
                child.base.weight += child.delta_weight()
            setattr(parent, name, child.base)
    return model
