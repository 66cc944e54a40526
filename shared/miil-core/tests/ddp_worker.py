"""Trains a batch-norm-free MLP on real digits with the engine; run alone or under torchrun (see test_ddp.py)."""

import sys

import torch
import torch.nn as nn

from miil.core import distributed as du
from miil.core.data import DigitsDataset
from miil.core.io import save_safetensors
from miil.core.metrics import AccuracyMeter
from miil.core.train import TrainConfig, Trainer


def main(out_dir: str, batch_size: int) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.GELU(), nn.Linear(32, 10))
    cfg = TrainConfig(
        out_dir=out_dir,
        epochs=2,
        batch_size=batch_size,
        opt="sgd",
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-4,
        sched="cosine",
        warmup_epochs=1,
        clip_grad=1.0,
        ema=True,
        ema_decay=0.9,
        progress=False,
        device="cpu",
        seed=5,
    )
    trainer = Trainer(
        model,
        nn.CrossEntropyLoss(),
        DigitsDataset("train"),
        cfg,
        val_dataset=DigitsDataset("test"),
        meter=AccuracyMeter(topk=(1,)),
    )
    result = trainer.fit()
    if du.is_main_process():
        save_safetensors(
            model.state_dict(),
            f"{out_dir}/final.safetensors",
            metadata={"world": str(du.get_world_size()), "best": str(result.best_metric)},
        )
    if du.is_distributed():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
