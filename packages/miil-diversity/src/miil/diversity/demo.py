"""The diversity demo: on real images, self-supervised-then-supervised pretraining vs supervised-only pretraining,
compared by source accuracy, diversity and transfer to a held-out real task.

Paper: "Diverse ImageNet Models Transfer Better" (arXiv 2204.09134 / WACV 2024). In miniature:

* source task: scikit-learn's 1,797 real 8x8 handwritten digits (stratified split: 1,347 train, 450 held-out);
* a teacher CNN is trained on the digits, then the same small student CNN is pretrained twice with USI's KD recipe
  (:func:`miil.usi.build_usi_trainer`, soft CE + 5 x KL, mixup/cutmix, AdamW + cosine), once from random
  initialisation (baseline) and once from a SimCLR self-supervised initialisation trained on the same digits without
  labels (the paper's procedure);
* both are measured on the held-out digits (top-1, filter diversity, effective rank and correlation of the
  penultimate features) and transferred with a fixed-hyperparameter linear probe to scikit-image's LFW subset
  (100 real faces vs 100 non-faces, 25x25, resized to 8x8), over several stratified 50/50 splits.

Scaled for a one-minute CPU run (as in the USI demo): RandAugment off, crop scale from 0.6, batch 64 (USI's lr 2e-3
kept), one warm-up epoch, no EMA. ``passed`` is true when the SSL-initialised model transfers better (mean
linear-probe top-1 over the splits) than the supervised-only one, the paper's headline claim. Whether it is also the
more diverse one is printed and returned, not required: at this scale a randomly initialised CNN keeps near-orthogonal
random filters, so filter diversity need not follow the paper's ranking (see the README).
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T

from miil.core.data import DigitsDataset, digits_pil_images
from miil.core.extras import require
from miil.core.threads import limit_threads
from miil.core.train import TrainConfig
from miil.usi import build_usi_trainer, usi_transforms, validate
from miil.usi.demo import TEACHER_NORM, DemoCNN, train_digits_teacher

from .measure import measure_diversity
from .recipes import DiversityRecipe, TransferRecipe
from .ssl import TwoViewDataset, train_ssl
from .transfer import linear_probe

__all__ = ["lfw_face_dataset", "run_demo"]

NORM = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


class _Images(Dataset):
    def __init__(self, images: list[Image.Image], labels: list[int], transform):
        self.images, self.targets, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), self.targets[i]


def lfw_face_dataset(*, image_size: int = 8) -> tuple[list[Image.Image], list[int]]:
    """scikit-image's LFW subset (shipped in the wheel): 100 faces (label 1) and 100 non-faces (label 0), RGB PIL.

    Args:
        image_size: Side the 25x25 images are resized to.
    """
    with require("skimage", distribution="miil-diversity", extra="demo", purpose="the LFW faces (scikit-image's)"):
        from skimage.data import lfw_subset

    arrays = lfw_subset()
    images = [
        Image.fromarray(np.uint8(np.rint(a * 255))).resize((image_size, image_size), Image.Resampling.BILINEAR)
        for a in arrays
    ]
    labels = [1] * 100 + [0] * 100  # the subset stores the 100 faces first
    return [im.convert("RGB") for im in images], labels


def _split(labels: list[int], seed: int) -> tuple[list[int], list[int]]:
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in sorted(set(labels)):
        idx = rng.permutation([i for i, y in enumerate(labels) if y == c]).tolist()
        train += idx[: len(idx) // 2]
        test += idx[len(idx) // 2 :]
    return train, test


def _base(out_dir: Path) -> DiversityRecipe:
    return DiversityRecipe(
        out_dir=str(out_dir),
        model="demo-cnn",
        num_classes=10,
        img_size=8,
        batch_size=64,
        warmup_epochs=1,
        sched_on_updates=True,
        ema=False,
        amp=False,
        device="cpu",
        progress=False,
        randaug="",
        scale=(0.6, 1.0),
        mean=NORM[0],
        std=NORM[1],
    )


def run_demo(*, long: bool = False) -> dict:
    """Pretrain both ways, measure, transfer; ``passed`` when SSL+supervised transfers better than supervised only.

    Args:
        long: More epochs and transfer splits.
    """
    teacher_epochs, sup_epochs, ssl_epochs, splits = (20, 30, 40, 10) if long else (4, 6, 6, 3)
    width = 16
    t0 = time.perf_counter()
    results: dict[str, dict] = {}
    # tiny models: one thread is as fast and does not fight over a shared CPU
    with limit_threads(1), tempfile.TemporaryDirectory(prefix="miil-demo-diversity-") as tmp:
        base = _base(Path(tmp))
        teacher, teacher_top1 = train_digits_teacher(base, f"{tmp}/teacher", epochs=teacher_epochs)

        sup_cfg = dataclasses.replace(
            base,
            epochs=sup_epochs,
            teacher="demo-teacher",
            teacher_mean=TEACHER_NORM[0],
            teacher_std=TEACHER_NORM[1],
        )
        train_tf, eval_tf = usi_transforms(sup_cfg, *NORM)
        train = DigitsDataset("train", channels=3, transform=train_tf)
        test = DigitsDataset("test", channels=3, transform=eval_tf)
        pil_digits = digits_pil_images("train", channels=3)  # (image, label) pairs; labels unused by SSL
        ssl_tf = T.Compose(
            [
                T.RandomResizedCrop(8, scale=(0.4, 1.0), antialias=True),
                T.RandomAffine(10, translate=(0.1, 0.1)),
                T.ColorJitter(0.4, 0.4),
                T.ToTensor(),
                T.Normalize(*NORM),
            ]
        )
        faces, face_labels = lfw_face_dataset(image_size=8)
        face_eval = T.Compose([T.ToTensor(), T.Normalize(*NORM)])
        probe_cfg = TransferRecipe(
            out_dir=f"{tmp}/probe", epochs=30, batch_size=50, lr=1e-2, device="cpu", progress=False, drop_last=False
        )
        for name in ("supervised", "ssl+supervised"):
            torch.manual_seed(0)
            model = DemoCNN(width)
            if name == "ssl+supervised":
                ssl_cfg = TrainConfig(
                    out_dir=f"{tmp}/ssl",
                    epochs=ssl_epochs,
                    batch_size=128,
                    lr=3e-3,
                    weight_decay=1e-6,
                    warmup_epochs=1,
                    device="cpu",
                    progress=False,
                )
                train_ssl(model, TwoViewDataset(pil_digits, ssl_tf), ssl_cfg, proj_hidden=64, proj_dim=32)
            cfg = dataclasses.replace(sup_cfg, out_dir=f"{tmp}/{name}")
            build_usi_trainer(cfg, train, model=model, teacher=teacher).fit()
            model.eval()
            source_top1 = validate(model, test)["top1"]
            report = measure_diversity(model, test, batch_size=256)
            probes = []
            for seed in range(splits):
                tr, te = _split(face_labels, seed)
                probes.append(
                    linear_probe(
                        model,
                        _Images([faces[i] for i in tr], [face_labels[i] for i in tr], face_eval),
                        _Images([faces[i] for i in te], [face_labels[i] for i in te], face_eval),
                        dataclasses.replace(probe_cfg, out_dir=f"{tmp}/probe-{name}-{seed}", seed=seed),
                        num_classes=2,
                    ).value
                )
            results[name] = {
                "source_top1": source_top1,
                **{k: report.overall[k] for k in ("filter_diversity", "effective_rank", "feature_correlation")},
                "transfer_top1": statistics.fmean(probes),
                "transfer_top1_per_split": probes,
            }
    seconds = time.perf_counter() - t0
    print(f"teacher held-out digits top-1 {teacher_top1:.2f}% ({teacher_epochs} epochs)")
    print(
        f"{'pretraining':<16} {'digits top-1':>12} {'filter div':>10} {'eff. rank':>9} {'feat corr':>9} "
        f"{'faces probe top-1':>17}"
    )
    for name, r in results.items():
        print(
            f"{name:<16} {r['source_top1']:>11.2f}% {r['filter_diversity']:>10.4f} {r['effective_rank']:>9.2f} "
            f"{r['feature_correlation']:>9.4f} {r['transfer_top1']:>16.2f}%"
        )
    sup, ssl = results["supervised"], results["ssl+supervised"]
    more_diverse = ssl["filter_diversity"] > sup["filter_diversity"]
    transfers_better = ssl["transfer_top1"] > sup["transfer_top1"]
    print(
        f"SSL init -> better face/non-face linear probe: {transfers_better}; more diverse filters: {more_diverse} "
        f"(probe: mean of {splits} splits; {seconds:.0f} s)"
    )
    summary = (
        f"faces probe top-1: ssl+sup {ssl['transfer_top1']:.2f}% vs sup {sup['transfer_top1']:.2f}%; filter diversity "
        f"{ssl['filter_diversity']:.4f} vs {sup['filter_diversity']:.4f}; digits top-1 {ssl['source_top1']:.2f}% vs "
        f"{sup['source_top1']:.2f}%"
    )
    return {
        "passed": bool(transfers_better),
        "summary": summary,
        "metrics": {
            "supervised": sup,
            "ssl_supervised": ssl,
            "ssl_more_diverse": more_diverse,
            "teacher_top1": teacher_top1,
            "epochs": {"teacher": teacher_epochs, "supervised": sup_epochs, "ssl": ssl_epochs},
            "transfer_splits": splits,
            "seconds": seconds,
        },
    }
