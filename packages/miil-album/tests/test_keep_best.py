"""Keep-best of the album recipes on a validation set small enough to saturate mAP (issue: an epoch-1 copy that named
one event for every album was kept as "best" at mAP 100, top-1 33.3, over later weights with top-1 100)."""

import dataclasses
import json

import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset

from miil.album import RECIPES, make_trainer

EVENTS = 3


class _OneHotAlbums(Dataset):
    """Albums of 3 photos whose pixels carry the album's event as a one-hot over the channels."""

    def __init__(self, albums_per_event: int):
        self.events = [e for e in range(EVENTS) for _ in range(albums_per_event)]

    def __len__(self):
        return len(self.events)

    def __getitem__(self, index):
        target = torch.zeros(EVENTS)
        target[self.events[index]] = 1.0
        images = target.view(1, EVENTS, 1, 1).expand(3, EVENTS, 2, 2).clone()
        return images, target, index


class _BiasedEvents(nn.Module):
    """Logits ``5 * event one-hot + bias`` with a learnable bias on event 0 only.

    Every event ranks its own albums first whatever the bias, so mAP is 100 at every step; top-1 is 33.3 while the
    bias of event 0 is above 5 (event 0 wins every album) and 100 once it is below.
    """

    def __init__(self, bias: float):
        super().__init__()
        self.bias0 = nn.Parameter(torch.tensor([bias]))

    def forward(self, images, mask=None):
        onehot = images.mean(dim=(1, 3, 4))
        return 5.0 * onehot + torch.cat([self.bias0, torch.zeros(EVENTS - 1)])


def test_saturated_map_is_decided_by_top1_and_the_choice_is_logged(tmp_path):
    recipe = dataclasses.replace(
        RECIPES["peta-ml-cufed"],
        out_dir=str(tmp_path / "run"),
        epochs=2,
        batch_size=2,
        opt="momentum",  # timm: SGD without Nesterov (momentum 0 below: plain steps)
        momentum=0.0,
        weight_decay=0.0,
        lr=10.0,
        sched="none",
        warmup_epochs=0,
        clip_grad=0.02,
        clip_mode="value",  # every update lowers the bias by exactly 0.2: 5.4 after epoch 1, 4.8 after epoch 2
        amp=False,
        progress=False,
        device="cpu",
    )
    assert (recipe.eval_metric, recipe.eval_tiebreak, recipe.ema) == ("mAP", "top1:max", True)
    model = _BiasedEvents(6.0)
    result = make_trainer(recipe, model, _OneHotAlbums(2), val_dataset=_OneHotAlbums(2)).fit()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["updates"] for r in rows] == [3, 3]
    assert all(r["val"]["mAP"] == r["val_ema"]["mAP"] == 100.0 for r in rows)  # saturated everywhere
    one_event = [rows[0]["val"]["top1"], rows[0]["val_ema"]["top1"], rows[1]["val_ema"]["top1"]]
    assert one_event == pytest.approx([100 / 3] * 3)  # event 0 for every album
    assert rows[1]["val"]["top1"] == 100.0
    for row in rows:
        sel = row["selected"]
        assert sel["metric"] == "mAP" and sel["tiebreak"] == "top1" and sel["source"] in ("raw", "ema")
    assert rows[1]["selected"] == {
        "source": "raw", "metric": "mAP", "value": 100.0, "tiebreak": "top1", "tiebreak_value": 100.0, "new_best": True,
    }  # fmt: skip
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert (result.best_epoch, result.best_source, best["metrics"]["top1"]) == (1, "raw", 100.0)
    assert model.bias0.item() < 5.0
