"""A small BatchNorm CNN with EMA trained on real digits by the engine; run under torchrun by test_ddp_agreement.py.

Each rank writes its raw model and EMA state after ``fit`` to ``rank<R>.safetensors``, so the test can check that the
ranks ended with identical weights and buffers. ``MIIL_TEST_KILL_AFTER_EPOCH`` kills the run after an epoch.
"""

import sys

import torch
import torch.nn as nn

from miil.core import distributed as du
from miil.core.data import DigitsDataset
from miil.core.io import save_safetensors
from miil.core.metrics import AccuracyMeter
from miil.core.train import TrainConfig, Trainer


def build_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.1),
        nn.Linear(16, 10),
    )


def config(out_dir: str, resume: bool = False) -> TrainConfig:
    return TrainConfig(
        out_dir=out_dir,
        epochs=3,
        batch_size=32,
        opt="sgd",
        lr=0.1,
        momentum=0.9,
        sched="cosine",
        ema=True,
        ema_decay=0.9,
        progress=False,
        device="cpu",
        seed=11,
        resume=resume,
        max_steps_per_epoch=12,
    )


def main(out_dir: str, resume: bool) -> None:
    trainer = Trainer(
        build_model(),
        nn.CrossEntropyLoss(),
        DigitsDataset("train"),
        config(out_dir, resume),
        val_dataset=DigitsDataset("test"),
        meter=AccuracyMeter(topk=(1,)),
    )
    trainer.fit()
    state = {f"raw.{k}": v for k, v in trainer.model.state_dict().items()}
    state.update({f"ema.{k}": v for k, v in trainer.ema.module.state_dict().items()})
    save_safetensors(state, f"{out_dir}/rank{du.get_rank()}.safetensors")


if __name__ == "__main__":
    main(sys.argv[1], len(sys.argv) > 2 and sys.argv[2] == "resume")
