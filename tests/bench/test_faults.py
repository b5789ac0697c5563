import pytest
import torch

from xmbench.bench import faults
from xmbench.data.sources import load_split
from xmbench.errors import ConfigError
from xmbench.eval.retrieval import encode_split
from xmbench.models.reference import build_reference


def test_no_fault_by_default(monkeypatch):
    monkeypatch.delenv(faults.ENV_VAR, raising=False)
    assert faults.active() == {}


def test_faults_parse_and_unknown_is_an_error(monkeypatch):
    monkeypatch.setenv(faults.ENV_VAR, "slowdown=0.3, cripple_adapters")
    assert faults.active() == {"slowdown": 0.3, "cripple_adapters": 1.0}
    monkeypatch.setenv(faults.ENV_VAR, "slowdwn=0.3")
    with pytest.raises(ConfigError, match="unknown fault 'slowdwn'"):
        faults.active()


def test_noise_and_crippled_adapters_change_embeddings(tiny_config, monkeypatch):
    split = load_split(tiny_config.data, "test")
    torch.manual_seed(0)
    model = build_reference(tiny_config, split.modalities)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.1)
    clean = encode_split(model, split, "image")
    monkeypatch.setenv(faults.ENV_VAR, "cripple_adapters")
    faults.inject(model)
    assert all(not p.any() for n, p in model.named_parameters() if "lora_B" in n)
    crippled = encode_split(model, split, "image")
    assert not torch.allclose(clean, crippled)
    monkeypatch.setenv(faults.ENV_VAR, "embedding_noise=0.5")
    faults.inject(model)
    noisy = encode_split(model, split, "image")
    assert torch.allclose(noisy.norm(dim=-1), torch.ones(len(noisy)))
    assert (noisy - crippled).abs().max() > 0.05
