"""Baselines: a suite's accepted records, stored as baselines/<machine-class>/<suite>.json.

A baseline is only compared on the machine class that produced it: timings from another
machine say nothing. The class is derived from the hardware and can be overridden
(--machine-class or $XMBENCH_MACHINE_CLASS) for fleets of identical machines.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from xmbench.bench import env
from xmbench.bench.record import SCHEMA_VERSION, Record, write_json_atomic
from xmbench.errors import XmbenchError

DEFAULT_BASELINES = Path("baselines")
KIND = "xmbench-baseline"


def machine_class(override: str | None = None) -> str:
    """e.g. 'cpu-intel-xeon-platinum-8481c-2c' or 'cuda-nvidia-h200'."""
    chosen = override or os.environ.get("XMBENCH_MACHINE_CLASS")
    if chosen:
        return chosen
    if env.cuda_available():
        import torch

        hardware = f"cuda-{torch.cuda.get_device_name(0)}"
    else:
        hardware = f"cpu-{env.cpu_model()}-{os.cpu_count()}c"
    hardware = re.sub(r"\((r|tm|R|TM)\)|cpu @.*|@.*", "", hardware)
    return re.sub(r"[^a-z0-9]+", "-", hardware.lower()).strip("-")


def baseline_path(suite: str, directory: Path = DEFAULT_BASELINES, machine: str | None = None) -> Path:
    return Path(directory) / machine_class(machine) / f"{suite}.json"


def accept(records: list[Record], suite: str, directory: Path = DEFAULT_BASELINES, machine: str | None = None,
           force: bool = False) -> Path:
    """Store the records as the suite's baseline; refuses a dirty git tree unless forced."""
    git = env.git_state()
    if git["dirty"] and not force:
        raise XmbenchError("the git tree has uncommitted changes: a baseline must name the commit that produced "
                           "it. Commit first, or pass --force")
    if not records:
        raise XmbenchError(f"no records of suite '{suite}' to accept; run `xmbench run` first")
    path = baseline_path(suite, directory, machine)
    payload = {"kind": KIND, "schema_version": SCHEMA_VERSION, "suite": suite, "machine_class": machine_class(machine),
               "commit": git["commit"], "dirty": git["dirty"],
               "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
               "records": [asdict(r) for r in records]}
    write_json_atomic(path, payload)
    return path


def load(suite: str, directory: Path = DEFAULT_BASELINES, machine: str | None = None) -> tuple[list[Record], dict]:
    """The baseline's records and its header; clear errors for missing, foreign or stale files."""
    path = baseline_path(suite, directory, machine)
    if not path.exists():
        others = sorted(p.parent.name for p in Path(directory).glob(f"*/{suite}.json"))
        elsewhere = f" (baselines exist for other machine classes: {', '.join(others)})" if others else ""
        raise XmbenchError(f"no baseline for suite '{suite}' on machine class '{machine_class(machine)}' at {path}"
                           f"{elsewhere}; create one with `xmbench baseline accept SUITE`")
    try:
        payload = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise XmbenchError(f"{path}: corrupt baseline file: {exc}") from None
    if not isinstance(payload, dict) or payload.get("kind") != KIND:
        raise XmbenchError(f"{path}: not an xmbench baseline file")
    if payload.get("schema_version") != SCHEMA_VERSION:
        raise XmbenchError(f"{path}: baseline record schema {payload.get('schema_version')} differs from this "
                           f"xmbench's {SCHEMA_VERSION}; re-accept the baseline")
    if payload.get("machine_class") != machine_class(machine):
        raise XmbenchError(f"{path}: baseline was measured on machine class '{payload.get('machine_class')}', this is "
                           f"'{machine_class(machine)}'; timings are not comparable across machines")
    try:
        records = [Record(**r) for r in payload["records"]]
    except (KeyError, TypeError) as exc:
        raise XmbenchError(f"{path}: malformed baseline records: {exc}") from None
    header = {k: v for k, v in payload.items() if k != "records"}
    return records, header
