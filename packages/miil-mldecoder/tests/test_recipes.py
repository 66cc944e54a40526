import dataclasses

import pytest

from miil.core.errors import UserError
from miil.core.train import TrainConfig
from miil.mldecoder import RECIPES, CocoTResNetL448, MLDecoderRecipe
from miil.mldecoder.pipeline import model_spec


def test_coco_recipe_is_the_papers():
    r = RECIPES["coco-tresnet-l-448"]
    assert isinstance(r, CocoTResNetL448) and isinstance(r, TrainConfig)
    assert (r.opt, r.lr, r.weight_decay, r.sched, r.pct_start) == ("adam", 1e-4, 1e-4, "onecycle", 0.2)
    assert (r.ema, r.ema_decay, r.amp, r.epochs, r.batch_size) == (True, 0.9997, True, 40, 56)
    assert (r.gamma_neg, r.gamma_pos, r.clip) == (4.0, 0.0, 0.05)
    assert (r.img_size, r.cutout, r.normalize, r.model, r.eval_metric) == (448, 0.5, False, "tresnet_v2_l", "mAP")
    assert (r.num_groups, r.embed_dim, r.num_heads, r.ffn_dim, r.decoder_dropout) == (100, 768, 8, 2048, 0.1)
    assert not r.learnable_queries


def test_other_rows():
    assert RECIPES["openimages-tresnet-m-224"].num_groups == 200
    assert RECIPES["openimages-tresnet-m-224"].num_classes == 9605
    zsl = RECIPES["nuswide-zsl-tresnet-l-224"]
    assert (zsl.task, zsl.weight_decay, zsl.img_size, zsl.eval_metric) == ("zsl", 1e-2, 224, "ZSL_mAP")
    inet = RECIPES["imagenet-resnet50-224"]
    assert (inet.task, inet.model, inet.single_label_loss, inet.bce_target_threshold) == (
        "singlelabel", "resnet50", "bce", 0.2,
    )  # fmt: skip


def test_recipes_are_frozen_and_specs_are_validated():
    r = RECIPES["coco-tresnet-m-224"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.lr = 1.0
    spec = model_spec(r, 80)
    assert spec["head"] == "ml_decoder" and spec["head_kwargs"]["num_groups"] == 100
    assert model_spec(dataclasses.replace(r, head="linear"), 80)["head_kwargs"] == {}
    with pytest.raises(UserError, match="task must be one of"):
        model_spec(dataclasses.replace(r, task="detection"), 80)
    with pytest.raises(UserError, match="needs the ML-Decoder head"):
        model_spec(dataclasses.replace(RECIPES["nuswide-zsl-tresnet-l-224"], head="linear"), 10)
    assert MLDecoderRecipe().task == "multilabel"
