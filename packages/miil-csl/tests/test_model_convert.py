import pytest
import torch

from miil.core.io import KeyMappingError
from miil.csl import convert_original_checkpoint, create_csl_model, load_original_checkpoint


@pytest.mark.parametrize("bottleneck", [None, 16])
def test_original_checkpoint_converts_to_identical_outputs(bottleneck, tiny_tresnet, randomize, to_original_layout):
    torch.manual_seed(0)
    ours = create_csl_model(tiny_tresnet(), num_classes=5, bottleneck_features=bottleneck)
    randomize(ours)
    original = to_original_layout(ours)
    assert "body.conv1.0.weight" in original and "body.layer2.0.conv1.0.0.weight" in original
    fresh = create_csl_model(tiny_tresnet(), num_classes=5, bottleneck_features=bottleneck)
    fresh.load_state_dict(convert_original_checkpoint({"model": original, "num_classes": 5}, fresh))
    ours.eval(), fresh.eval()
    x = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(fresh(x), ours(x), rtol=1e-4, atol=1e-5)


def test_conversion_is_strict(tiny_tresnet, to_original_layout):
    ours = create_csl_model(tiny_tresnet(), num_classes=5)
    original = to_original_layout(ours)
    del original["body.layer1.0.se.fc1.weight"]
    original["head.extra.weight"] = torch.zeros(1)
    with pytest.raises(KeyMappingError) as err:
        convert_original_checkpoint(original, ours)
    text = str(err.value)
    assert "head.extra.weight" in text and "se.fc1.weight" in text


def test_load_original_checkpoint_file(tmp_path, tiny_tresnet, randomize, to_original_layout):
    ours = create_csl_model(tiny_tresnet(), num_classes=3, bottleneck_features=8)
    randomize(ours)
    path = tmp_path / "Open_Images_tiny.pth"
    torch.save(
        {"model": to_original_layout(ours), "num_classes": 3, "idx_to_class": {0: "'cat'", 1: "dog", 2: "car"}}, path
    )
    model, classes = load_original_checkpoint(path, model=tiny_tresnet())
    assert classes == ["cat", "dog", "car"]
    assert model.head.embedding.out_features == 8
    ours.eval(), model.eval()
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(model(x), ours(x), rtol=1e-4, atol=1e-5)


def test_models_forward_and_train():
    for model in (
        create_csl_model("mosaic_cnn", num_classes=10, in_chans=1, width=8),
        create_csl_model("test_resnet", num_classes=4, bottleneck_features=8),
    ):
        chans = 1 if model.num_classes == 10 else 3
        x = torch.rand(2, chans, 24, 24)
        out = model(x)
        assert out.shape == (2, model.num_classes) and torch.isfinite(out).all()
        out.sum().backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="no pretrained"):
        create_csl_model("mosaic_cnn", num_classes=2, pretrained=True)
