"""Preflight: everything a suite needs, checked before the first training step, every problem listed.

`xmbench validate` and the start of `xmbench run` call it. For each suite file: it parses (all
files, not the first bad one); for each distinct dataset: the whole manifest is read and every
file decoded (ids unique across splits, splits known, captions a list of text, files whole);
the batch size fits the data; for each distinct model: the factory is imported and called, and
one tiny batch per modality is encoded to check the output's shape, dtype and finiteness. Each
problem is one line naming the file and line or the key, and the fix. Nothing is written.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from xmbench.config import RunConfig
from xmbench.errors import Problem, XmbenchError
from xmbench.models.applicability import capability_keys, missing_capabilities
from xmbench.schema import to_tree
from xmbench.suite import Suite, load_suite


@dataclass
class DataFacts:
    """What preflight learnt of a dataset: its modalities and items per split."""

    modalities: tuple[str, ...]
    counts: dict[str, int]
    problems: list[Problem] = field(default_factory=list)


def check_files(paths: list[Path]) -> tuple[list[Suite], list[Problem]]:
    """Parse every suite file, and check each that parses; every problem of every file."""
    suites, problems = [], []
    for path in paths:
        try:
            suite = load_suite(path)
        except XmbenchError as exc:
            problems.append(Problem.from_error(exc))
            continue
        suites.append(suite)
        problems += check_suite(suite)
    return suites, problems


def check_suite(suite: Suite, only: list[str] | None = None) -> list[Problem]:
    """Data, batch sizes and models of every variant (or those named); each distinct dataset and model once."""
    problems: list[Problem] = []
    data_seen: dict[str, DataFacts] = {}
    models_seen: dict[str, list[Problem]] = {}
    for variant in suite.variants:
        if only and variant.name not in only:
            continue
        where = f"{suite.path or suite.name}: variant '{variant.name}'"
        config = variant.config
        data_key = json.dumps(to_tree(config.data), sort_keys=True)
        if data_key not in data_seen:
            data_seen[data_key] = check_data(config, where)
            problems += data_seen[data_key].problems
        facts = data_seen[data_key]
        problems += check_sizes(config, facts, where)
        problems += check_teaching(config, where)
        problems += check_combinations(config, where)
        model_key = json.dumps({"model": to_tree(config.model), "data": to_tree(config.data),
                                "precision": to_tree(config.train.precision, "precision"),
                                "needs": [[key, repr(value)] for key, value in capability_keys(config)]}, sort_keys=True)
        if model_key not in models_seen:
            models_seen[model_key] = check_model(config, facts.modalities, where)
            problems += models_seen[model_key]
    return list(dict.fromkeys(problems))


def check_data(config: RunConfig, where: str = "") -> DataFacts:
    """The dataset as the run will load it; a manifest is read whole and every file decoded."""
    data = config.data
    problems = decoding_problems(config, where)
    if data.name != "manifest":
        return DataFacts(("text", "image", "audio"), {"train": data.n_train, "val": data.n_val, "test": data.n_test},
                         problems)
    from xmbench.data.manifest import SPLITS, check_manifest

    check = check_manifest(data.manifest, decode=True, image_size=data.image_size, sample_rate=data.sample_rate,
                           audio_seconds=data.audio_seconds)
    return DataFacts(check.modalities, {s: check.count(s) for s in SPLITS}, problems + check.problems)


def decoding_problems(config: RunConfig, where: str) -> list[Problem]:
    """The data must be deliverable as the towers' processors read it (an audio processor's sampling rate)."""
    from xmbench.data.processors import decoding_config

    try:
        decoding_config(config.data)
    except XmbenchError as exc:
        key, _, what = str(exc).partition(": ")
        return [Problem(f"{where}: {key}" if where else key, what)]
    return []


def check_sizes(config: RunConfig, facts: DataFacts, where: str) -> list[Problem]:
    """Every split the run reads has items, and a training batch fits the training split."""
    problems = []
    if not facts.counts:
        return problems
    needed = {"train": "training", config.eval.split: "evaluation"}
    if config.train.eval_every and config.train.steps:
        needed["val"] = "the learning curve's validation points (or set train.eval_every = 0)"
    for split, purpose in needed.items():
        if facts.counts.get(split, 0) == 0 and not (split == "train" and config.train.steps == 0):
            problems.append(Problem(f"{where}: data", f"the '{split}' split has no items, needed for {purpose}",
                                    f"add {split} rows to the dataset" if config.data.name == "manifest"
                                    else f"set data.n_{split} >= 1"))
    n_train = facts.counts.get("train", 0)
    if 0 < n_train < config.train.batch_size and config.train.steps > 0:
        problems.append(Problem(f"{where}: train.batch_size",
                                f"{config.train.batch_size} is more than the {n_train} items of the training split "
                                f"(each batch holds every item once at most)",
                                f"set train.batch_size to at most {n_train}, or add training items"))
    return problems


ROW_ALIGNED_LOSSES = ("infonce", "hn_infonce")  # row i of every modality is one item: extra rows break them


def check_combinations(config: RunConfig, where: str) -> list[Problem]:
    """Techniques that cannot work together: an augmentation adding rows to some modalities only
    (mix_negatives) needs a loss that matches rows by item id."""
    if any(c.name == "mix_negatives" for c in config.train.augment) and config.train.loss.name in ROW_ALIGNED_LOSSES:
        return [Problem(f"{where}: train.augment", f"mix_negatives adds image and audio rows that {config.train.loss.name} "
                                                   "cannot place (it pairs row i with row i)",
                        "use a loss that matches rows by item id: supcon, siglip or triplet")]
    return []


def check_teaching(config: RunConfig, where: str) -> list[Problem]:
    """Distillation terms need a teacher: a teaching variant (train.teacher) or an EMA of the student, not both."""
    distilling = [c.name for c in config.train.regularizers if c.name.startswith("distill_")]
    ema = any(c.name == "ema_teacher" for c in config.train.callbacks)
    if distilling and not (config.train.teacher or ema):
        return [Problem(f"{where}: train.regularizers", f"{', '.join(distilling)} without a teacher distil nothing",
                        "set train.teacher to a variant of the suite, or add the ema_teacher callback")]
    if ema and config.train.teacher:
        return [Problem(f"{where}: train.callbacks", "ema_teacher and train.teacher both teach",
                        "keep one of them")]
    return []


def check_model(config: RunConfig, modalities: tuple[str, ...], where: str) -> list[Problem]:
    """Build the model (structure only: no foundation pretraining) and encode one tiny batch per modality."""
    import torch
    from transformers.utils import logging as transformers_logging

    from xmbench.models import capabilities
    from xmbench.models.model import load_user_model

    transformers_logging.disable_progress_bar()  # one weight-loading bar per model checked is noise here
    try:
        if config.model.factory == "reference":
            from xmbench.models.reference import build_reference

            model = build_reference(config, modalities)
        else:
            model = load_user_model(config)
    except Exception as exc:  # noqa: BLE001 — whatever the factory raises is the problem to report
        return [Problem(f"{where}: model", f"{type(exc).__name__}: {exc}".splitlines()[0],
                        "fix the model factory or its settings")]
    missing = [m for m in modalities if m not in model.modalities]
    if not set(modalities) & set(model.modalities):
        return [Problem(f"{where}: model", f"the model encodes {', '.join(model.modalities)} but the data has "
                                           f"{', '.join(modalities)}: nothing to train or evaluate",
                        "use a dataset with the model's modalities")]
    problems = []
    try:
        batch = tiny_batch(config, [m for m in modalities if m not in missing])
    except XmbenchError:  # data the processors cannot read: check_data reports it (decoding_problems)
        return problems
    embeddings = {}
    capabilities.set_training(model, False)
    for modality, inputs in batch.items():
        try:
            with torch.no_grad():
                embeddings[modality] = capabilities.encode(model, modality, inputs)
            capabilities.check_finite(modality, embeddings[modality])
        except Exception as exc:  # noqa: BLE001
            problems.append(Problem(f"{where}: model.factory = {config.model.factory!r}",
                                    f"{type(exc).__name__}: {exc}".splitlines()[0],
                                    "encode must return finite (batch, dim) float embeddings"))
    if not problems:
        try:
            capabilities.check_same_width(model, embeddings)
        except XmbenchError as exc:
            problems.append(Problem(f"{where}: model.factory = {config.model.factory!r}", str(exc)))
    return problems + capability_problems(config, model, where)


def capability_problems(config: RunConfig, model, where: str) -> list[Problem]:
    """Keys a factory config sets that act through a capability its built model lacks: only the built model
    shows its components and layers, so this is where they are refused (xmbench.models.applicability)."""
    return [Problem(f"{where}: {key}", what, fix) for key, what, fix in missing_capabilities(config, model)]


def tiny_batch(config: RunConfig, modalities: list[str]) -> dict[str, dict]:
    """Two built-in items preprocessed exactly as the run's data will be: the model's input formats."""
    from xmbench.data.preprocess import Preprocessor
    from xmbench.data.processors import decoding_config
    from xmbench.data.synthetic import make_split

    data = replace(config.data, name="synthetic")
    decoded = decoding_config(data)  # at the resolution and sampling rate the towers' processors read
    raw = make_split("test", 2, "target", data.seed, image_size=decoded.image_size, sample_rate=decoded.sample_rate,
                     audio_seconds=data.audio_seconds)
    import torch

    split = Preprocessor(data)(raw)
    return {m: split.rows(m, torch.arange(2)) for m in modalities}
