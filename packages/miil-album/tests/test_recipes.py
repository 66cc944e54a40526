"""Recipes hold the paper's settings; build_model turns them into PETA or the baseline."""

import dataclasses

import pytest

from miil.album import PETA, RECIPES, MeanOfPredictions, build_model, make_loss
from miil.album.recipes import PETA_32_RELEASE, PETA_ML_CUFED, PETA_PEC


def test_recipes_carry_the_papers_settings():
    r = PETA_ML_CUFED
    assert (r.model, r.img_size, r.album_size, r.num_classes) == ("tresnet_m.miil_in21k", 224, 32, 23)
    assert (r.depth, r.num_heads, r.ffn_dim, r.transformer_dropout, r.norm_first) == (6, 8, 2048, 0.1, False)
    assert not r.pos_embed and PETA_32_RELEASE.pos_embed and PETA_PEC.num_classes == 14
    loss = make_loss(r)
    assert (loss.gamma_neg, loss.gamma_pos, loss.clip, loss.reduction) == (4.0, 0.05, 0.05, "sum")
    assert set(RECIPES) == {"peta-ml-cufed", "peta-cufed", "peta-pec", "mean-ml-cufed", "peta-32-release"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.lr = 1.0


def test_build_model_from_recipes():
    tiny = dict(model="test_resnet", pretrained=False, depth=1, num_heads=4, ffn_dim=16, num_classes=5)
    peta = build_model(dataclasses.replace(PETA_ML_CUFED, **tiny))
    assert isinstance(peta, PETA) and peta.aggregator.depth == 1 and peta.head.out_features == 5
    mean = build_model(dataclasses.replace(RECIPES["mean-ml-cufed"], **tiny))
    assert isinstance(mean, MeanOfPredictions) and mean.score == "softmax"
    with pytest.raises(ValueError, match="aggregator"):
        build_model(dataclasses.replace(PETA_ML_CUFED, aggregator="lstm", **tiny))
