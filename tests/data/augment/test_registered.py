"""The augmentations (and the mixup loss) are registered with a summary and documented options, and import no torch."""
import subprocess
import sys
from pathlib import Path

import pytest

from xmbench.registry import AUGMENTATIONS, LOSSES
from xmbench.schema import load_choice

NAMES = ("synonyms", "word_dropout", "time_shift", "gain", "noise", "pitch_shift", "spec_augment", "color_jitter",
         "random_resized_crop", "horizontal_flip", "mix_negatives", "cross_modal_shift")


@pytest.mark.parametrize("registry, name", [(AUGMENTATIONS, n) for n in NAMES] + [(LOSSES, "mixup")])
def test_registered_with_a_one_line_summary_and_documented_options(registry, name):
    entry = registry.entry(name)
    assert entry.summary and "\n" not in entry.summary
    assert all(doc for _, _, _, doc in entry.option_rows()), entry.option_rows()


def test_suites_name_them_with_options():
    choice = load_choice("augmentation", {"name": "gain", "min_db": -1, "max_db": 1}, "train.augment[0]")
    assert choice.options.min_db == -1.0
    with pytest.raises(Exception, match="unknown key 'max_dB'"):
        load_choice("augmentation", {"name": "gain", "max_dB": 1}, "train.augment[0]")


def test_registering_them_imports_no_torch():
    modules = [f"xmbench.data.augment.{n}" for n in NAMES] + ["xmbench.train.losses.mixup"]
    code = (f"import sys, importlib; [importlib.import_module(m) for m in {modules!r}]; "
            "heavy = [m for m in ('torch', 'torchaudio', 'torchvision', 'transformers') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[3])
    assert result.returncode == 0, result.stdout + result.stderr
