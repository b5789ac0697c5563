"""Registered adapter methods (PEFT): how a tower's backbone is made trainable, one module each.

An adapter is `apply(backbone, options) -> backbone`: it returns the backbone to train, with
`requires_grad` set on exactly the parameters it tunes. Methods from the `peft` library (lora and
DoRA, ia3, loha, lokr, vera, adalora) keep peft's own format (saved with `save_pretrained`,
loadable with `PeftModel.from_pretrained`); the methods written here (parallel, bottleneck, sora;
their modules in `_layers.py`) are saved in trained.safetensors. Which modules and layers an
adapter targets (roles query, key, value, output, mlp_in, mlp_out; layers "all", "top:N",
"bottom:N" or indices) is resolved in `_targets.py`. A backbone may carry `xmbench_callbacks`
(training callbacks its adapter needs, e.g. AdaLoRA's rank allocation, SoRA's proximal step)
and `xmbench_stats()` (what the record's profile shows under adapters.<modality>).
Suites choose one per tower: `model.image.adapter = { method = "lora", rank = 16 }`.
"""
