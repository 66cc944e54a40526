"""Run under torchrun by test_ddp.py: the repeated-augmentation sampler across real ranks, then `miil usi train`."""

import json
import sys
from pathlib import Path

import torch

from miil.core import distributed as du
from miil.core.cli import main as miil_main
from miil.usi import RepeatedAugSampler


def main(out_dir: str, data: str, teacher: str) -> None:
    du.init_distributed("cpu")
    rank, world = du.get_rank(), du.get_world_size()
    report = {"world": world}
    for mode in ("repeats", "dataset"):
        sampler = RepeatedAugSampler(25, num_repeats=3, rank=rank, world_size=world, seed=11, epoch_mode=mode)
        for epoch in (0, 1):
            sampler.set_epoch(epoch)
            mine = torch.tensor(list(sampler), dtype=torch.long)
            gathered = du.all_gather_cat(mine)  # rank 0's indices, then rank 1's
            sizes = du.all_gather_cat(torch.tensor([len(mine)]))
            report[f"{mode}/{epoch}"] = {"indices": gathered.tolist(), "sizes": sizes.tolist()}
    if rank == 0:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "sampler.json").write_text(json.dumps(report))
    code = miil_main(
        ["usi", "train", "--data-root", data, "--model", "test_efficientnet", "--epochs", "1", "--num-classes", "3"]
        + ["--img-size", "16", "--batch-size", "4", "--amp", "false", "--device", "cpu", "--progress", "false"]
        + ["--warmup-epochs", "0", "--teacher", "test_resnet", "--teacher-checkpoint", teacher]
        + ["--out-dir", str(Path(out_dir) / "run")]
    )
    sys.exit(code)


if __name__ == "__main__":
    main(*sys.argv[1:4])
