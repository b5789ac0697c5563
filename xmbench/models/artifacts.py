"""A trained variant on disk, and back: `save_artifacts` writes it, `load_artifacts` rebuilds it.

The folder holds `run.json` (the resolved config, modalities and seed that built the model), the
reference model's peft adapters in peft's own format (`adapters/<modality>/`), its heads and
temperature state (`heads.safetensors`) and any other trained tensor (`trained.safetensors`: fully
fine-tuned or non-peft adapter weights). A user model saves its trainable tensors, or its own
artifacts if it offers `save_artifacts`/`load_artifacts`. Rebuilding gives identical embeddings.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from xmbench.errors import XmbenchError

RUN_FILE = "run.json"
HEADS_FILE = "heads.safetensors"
TRAINED_FILE = "trained.safetensors"


def save_artifacts(model, directory: Path, config, modalities: tuple[str, ...], seed: int) -> int | None:
    """Write the trained model's artifacts; returns the adapter bytes on disk (None for user models)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / RUN_FILE).write_text(json.dumps({"config": config.to_dict(), "modalities": list(modalities),
                                                  "seed": seed}, indent=1))
    if hasattr(model, "save_artifacts"):
        return model.save_artifacts(directory)
    trained = _trainable_state(model)
    if trained:
        save_file(trained, str(directory / TRAINED_FILE))
    return None


def load_artifacts(directory: Path, device: torch.device | str = "cpu", with_config: bool = False):
    """Rebuild the trained model `save_artifacts` wrote into `directory` (transforms not applied);
    with `with_config`, (model, the RunConfig that built it)."""
    from xmbench.config import from_dict
    from xmbench.models.model import build_model

    directory = Path(directory)
    try:
        saved = json.loads((directory / RUN_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise XmbenchError(f"{directory}: no trained variant here ({RUN_FILE}: {exc})") from None
    config = from_dict(saved["config"])
    model, _ = build_model(config, tuple(saved["modalities"]), saved["seed"], progress=False)
    if hasattr(model, "load_artifacts"):
        model.load_artifacts(directory)
    elif (directory / TRAINED_FILE).exists():
        _load_trainable(model, load_file(str(directory / TRAINED_FILE)), directory / TRAINED_FILE)
    model = model.to(device) if hasattr(model, "to") else model
    return (model, config) if with_config else model


def save_reference(model, directory: Path) -> int:
    """peft adapters per tower, heads and temperature, and any other trained tensor; returns the adapter's
    bytes: its tensors' bytes, which neither peft's metadata files nor the library version change."""
    from peft import PeftModel
    from peft.utils import get_peft_model_state_dict

    adapter_bytes = 0
    covered = set()
    for modality, tower in model.towers.items():
        if isinstance(tower.backbone, PeftModel):
            tower.backbone.save_pretrained(str(directory / "adapters" / modality))
            # the adapter's own tensors as peft saves them, not the folder: peft's adapter_config.json
            # and README.md grow with every peft release (0.22 added 72 bytes to a three-tower LoRA)
            adapter_bytes += _tensor_bytes(get_peft_model_state_dict(tower.backbone))
            # only the adapter's own tensors are in peft's files (its tuner's prefix: lora_, ia3_, hada_, …);
            # base weights unfrozen by a callback are saved with the rest below
            prefix = getattr(tower.backbone.base_model, "prefix", "")
            covered |= {f"towers.{modality}.backbone.{n}" for n, p in tower.backbone.named_parameters()
                        if p.requires_grad and prefix and prefix in n}
    heads = {f"{part}.{k}": v.detach().contiguous() for part in ("heads", "temperature")
             for k, v in getattr(model, part).state_dict().items()}
    save_file(heads, str(directory / HEADS_FILE))
    rest = {k: v for k, v in _trainable_state(model).items() if k not in covered and k not in heads}
    if rest:
        save_file(rest, str(directory / TRAINED_FILE))
        adapter_bytes += _tensor_bytes({k: v for k, v in rest.items() if k.startswith("towers.")})
    return adapter_bytes


def _tensor_bytes(tensors: dict[str, torch.Tensor]) -> int:
    return sum(v.numel() * v.element_size() for v in tensors.values())


def load_reference(model, directory: Path) -> None:
    """The inverse of save_reference, onto a model built from the same config."""
    from peft import PeftModel
    from peft.utils import load_peft_weights, set_peft_model_state_dict

    for modality, tower in model.towers.items():
        folder = directory / "adapters" / modality
        if isinstance(tower.backbone, PeftModel) and folder.exists():
            result = set_peft_model_state_dict(tower.backbone, load_peft_weights(str(folder)))
            if getattr(result, "unexpected_keys", None):
                raise XmbenchError(f"{folder}: adapter weights do not fit this model: {result.unexpected_keys[:3]}")
    saved = load_file(str(directory / HEADS_FILE))
    for part in ("heads", "temperature"):
        getattr(model, part).load_state_dict({k.removeprefix(f"{part}."): v for k, v in saved.items()
                                              if k.startswith(f"{part}.")})
    if (directory / TRAINED_FILE).exists():
        _load_trainable(model, load_file(str(directory / TRAINED_FILE)), directory / TRAINED_FILE)


def _trainable_state(model) -> dict[str, torch.Tensor]:
    if not hasattr(model, "named_parameters"):
        return {}
    return {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def _load_trainable(model, tensors: dict[str, torch.Tensor], path: Path) -> None:
    own = dict(model.named_parameters())
    unknown = [k for k in tensors if k not in own]
    if unknown:
        raise XmbenchError(f"{path}: {len(unknown)} tensors do not fit this model, e.g. {unknown[0]}")
    with torch.no_grad():
        for name, value in tensors.items():
            own[name].copy_(value)
