"""The body of one run on several ranks: `torchrun … -m xmbench.bench.ddp_worker JOB_FILE`.

Every rank joins the process group torchrun describes and runs the job; training is distributed
(xmbench.train.distributed), and rank 0 alone evaluates, profiles and writes the record.
"""
from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    import torch.distributed as dist

    from xmbench.bench.jobs import thaw
    from xmbench.train import distributed

    job = thaw(Path(argv[0]).read_bytes())  # `-m` put the working folder on sys.path: plugins import from it
    distributed.init_from_environment()
    try:
        job.run_here(progress=False)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
