"""PETA and the mean-of-predictions baseline: masked albums, order, timm backbones, gradients."""

import pytest
import torch
import torch.nn as nn

from miil.album import PETA, ImageEncoder, MeanOfPredictions, embed_album_images


def _tiny_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1))


def _peta(**kw) -> PETA:
    return PETA(_tiny_cnn(), num_features=16, num_classes=5, depth=2, num_heads=4, ffn_dim=32, dropout=0.0, **kw)


def test_padding_images_changes_nothing_also_in_training_mode():
    torch.manual_seed(0)
    model = _peta().train()  # BatchNorm in training mode: padded photos must not enter its statistics
    albums = torch.rand(2, 4, 3, 8, 8)
    reference = model(albums)
    padded = torch.cat([albums, torch.rand(2, 3, 3, 8, 8) * 50], 1)
    mask = torch.tensor([[True] * 4 + [False] * 3] * 2)
    torch.testing.assert_close(model(padded, mask), reference, rtol=1e-5, atol=1e-5)


def test_albums_of_different_sizes_in_one_batch_match_alone():
    torch.manual_seed(1)
    model = _peta().eval()
    a, b = torch.rand(1, 3, 3, 8, 8), torch.rand(1, 6, 3, 8, 8)
    batch = torch.zeros(2, 6, 3, 8, 8)
    batch[0, :3], batch[1] = a[0], b[0]
    mask = torch.tensor([[True] * 3 + [False] * 3, [True] * 6])
    out = model(batch, mask)
    torch.testing.assert_close(out[0], model(a)[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[1], model(b)[0], rtol=1e-5, atol=1e-5)


def test_order_invariance_without_position_embedding():
    torch.manual_seed(2)
    model = _peta().eval()
    albums = torch.rand(2, 5, 3, 8, 8)
    perm = torch.tensor([4, 2, 0, 1, 3])
    torch.testing.assert_close(model(albums[:, perm]), model(albums), rtol=1e-5, atol=1e-5)


def test_attention_is_returned_per_layer_and_head():
    model = _peta().eval()
    logits, attention = model(torch.rand(2, 3, 3, 8, 8), return_attention=True)
    assert logits.shape == (2, 5) and attention.shape == (2, 2, 4, 4, 4)
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 2, 4, 4))


@pytest.mark.parametrize("pos_embed", [False, True])
def test_every_parameter_gets_a_gradient(pos_embed):
    torch.manual_seed(3)
    model = _peta(pos_embed=pos_embed)
    mask = torch.tensor([[True] * 4, [True, False, False, False]])
    model(torch.rand(2, 4, 3, 8, 8), mask).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("score", ["softmax", "sigmoid", "logits"])
def test_mean_of_predictions_is_the_masked_mean_of_per_image_predictions(score):
    torch.manual_seed(4)
    model = MeanOfPredictions(_tiny_cnn(), num_features=16, num_classes=4, score=score).eval()
    albums = torch.rand(2, 5, 3, 8, 8)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    out = model(albums, mask)
    per_image = model.head(model.backbone(albums.flatten(0, 1))).view(2, 5, 4)
    for i, n in enumerate((5, 2)):
        preds = {"softmax": per_image[i, :n].softmax(-1), "sigmoid": per_image[i, :n].sigmoid()}.get(score)
        if preds is None:
            torch.testing.assert_close(out[i], per_image[i, :n].mean(0), rtol=1e-5, atol=1e-6)
        else:
            torch.testing.assert_close(out[i].sigmoid(), preds.mean(0), rtol=1e-5, atol=1e-6)
    model.train()
    model(albums, mask).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_timm_backbone_embeddings_and_normalisation():
    torch.manual_seed(5)
    enc = ImageEncoder("test_resnet")
    assert enc.num_features == 96 and enc.normalize  # timm mean/std 0.5 applied inside
    assert not ImageEncoder("tresnet_m", width_factor=0.125).normalize  # TResNet takes [0, 1] as the original
    model = PETA("test_resnet", num_classes=3, depth=1, num_heads=8, ffn_dim=32).eval()
    images = torch.rand(2, 3, 3, 32, 32)
    mask = torch.tensor([[True, True, True], [True, False, False]])
    emb = embed_album_images(model.backbone, images, mask)
    assert emb.shape == (2, 3, 96) and torch.all(emb[1, 1:] == 0)
    torch.testing.assert_close(emb[0], model.backbone(images[0]), rtol=1e-5, atol=1e-5)
    assert model(images, mask).shape == (2, 3)


def test_bad_inputs_are_refused():
    model = _peta()
    with pytest.raises(ValueError, match=r"\[B, K, C, H, W\]"):
        model(torch.rand(4, 3, 8, 8))
    with pytest.raises(ValueError, match="mask must have shape"):
        model(torch.rand(2, 3, 3, 8, 8), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="score"):
        MeanOfPredictions(_tiny_cnn(), num_features=16, score="median")
