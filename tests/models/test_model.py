import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file

from tests.conftest import user_model
from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.errors import ConfigError
from xmbench.eval.retrieval import encode_split
from xmbench.models.adapters._targets import resolve_targets
from xmbench.models.artifacts import save_artifacts
from xmbench.models.capabilities import count_parameters
from xmbench.models.model import CrossModalModel, load_user_model
from xmbench.models.reference import build_reference

MODALITIES = ("text", "image", "audio")


def test_lora_trains_only_adapters_heads_and_temperature(tiny_config):
    model = build_reference(tiny_config, MODALITIES)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith("heads.") or n == "temperature.log_scale" for n in trainable)
    for modality in MODALITIES:  # query and value of each attention layer got LoRA A and B
        lora = [n for n in trainable if n.startswith(f"towers.{modality}.") and "lora_A" in n]
        assert len(lora) == 2 * 2  # 2 layers × (query, value)
    assert isinstance(model, CrossModalModel)


def test_rank_changes_trainable_parameters_exactly(tiny_base):
    r8 = count_parameters(build_reference(resolve(tiny_base), MODALITIES), trainable=True)
    r4 = count_parameters(build_reference(resolve(tiny_base, {"model.*.adapter.rank": 4}), MODALITIES), trainable=True)
    # each of 3 towers × 2 layers × 2 targets loses 4 rank × (32 in + 32 out) parameters
    assert r8 - r4 == 3 * 2 * 2 * 4 * (32 + 32)


def test_role_names_resolve_per_architecture(tiny_config):
    model = build_reference(tiny_config, MODALITIES, adapters=dict.fromkeys(MODALITIES, "frozen"))
    assert resolve_targets(model.towers["text"].backbone, ["query", "value"]) == ["query", "value"]
    assert resolve_targets(model.towers["image"].backbone, ["query", "value"]) == ["q_proj", "v_proj"]
    with pytest.raises(ConfigError, match="'nothing' matches no module"):
        resolve_targets(model.towers["audio"].backbone, ["nothing"])


def test_saved_adapters_reload_with_peft_and_reproduce_embeddings(tiny_config, tmp_path):
    torch.manual_seed(0)
    model = build_reference(tiny_config, MODALITIES)
    with torch.no_grad():  # move LoRA off its zero init so the adapter matters
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    save_artifacts(model, tmp_path, tiny_config, MODALITIES, seed=0)
    split = load_split(tiny_config.data, "test")
    expected = {m: encode_split(model, split, m) for m in MODALITIES}

    torch.manual_seed(0)  # same base weights, no adapters
    reloaded = build_reference(tiny_config, MODALITIES, adapters=dict.fromkeys(MODALITIES, "frozen"))
    for m in MODALITIES:
        reloaded.towers[m].backbone = PeftModel.from_pretrained(reloaded.towers[m].backbone, tmp_path / "adapters" / m)
    heads = load_file(tmp_path / "heads.safetensors")
    reloaded.heads.load_state_dict({k.removeprefix("heads."): v for k, v in heads.items() if k.startswith("heads.")})
    for m in MODALITIES:
        torch.testing.assert_close(encode_split(reloaded, split, m), expected[m])


class EchoModel(torch.nn.Module):
    modalities = ("image", "audio")

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(4, 4)

    def encode(self, modality, inputs):
        return self.proj(torch.ones(len(next(iter(inputs.values()))), 4))


def make_echo(config):
    return EchoModel()


def test_user_model_through_an_import_path(tiny_base):
    config = resolve(tiny_base, user_model("tests.models.test_model:make_echo"))
    assert isinstance(load_user_model(config), EchoModel)
    with pytest.raises(ConfigError, match="cannot import"):
        load_user_model(resolve(tiny_base, user_model("tests.models.test_model:missing")))


def test_device_resolution():
    import pytest
    import torch

    from xmbench.errors import ConfigError
    from xmbench.models.model import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="train.device: 'cuda' was asked for but torch.cuda.is_available"):
            resolve_device("cuda")
