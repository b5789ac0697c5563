"""Registered adapter methods (PEFT): how a tower's backbone is made trainable, one module each.

An adapter is `apply(backbone, options) -> backbone`: it returns the backbone to train, with
`requires_grad` set on exactly the parameters it tunes. Methods from the `peft` library keep
peft's own format (saved with `save_pretrained`, loadable with `PeftModel.from_pretrained`).
Suites choose one per tower: `model.image.adapter = { method = "lora", rank = 16 }`.
"""
