import json

import pytest
import torch

from miil.core.metrics import mean_average_precision
from miil.mldecoder import (
    QueryAugmentation,
    ZeroShotMeter,
    ZeroShotMLDecoder,
    convert_state_dict,
    create_model,
    load_zsl_split,
    zsl_metrics,
)

KW = dict(in_features=12, word_dim=10, embed_dim=16, num_heads=2, ffn_dim=32)


def test_swapping_word_vectors_changes_classes_not_weights():
    torch.manual_seed(0)
    seen, unseen = torch.randn(6, 10), torch.randn(4, 10)
    head = ZeroShotMLDecoder(word_vectors=seen, **KW).eval()
    before = {k: v.clone() for k, v in head.state_dict().items()}
    assert "word_vectors" not in before  # class vectors are data, never part of the checkpoint
    x = torch.randn(3, 12, 4, 4)
    seen_logits = head(x)
    head.set_word_vectors(unseen)
    unseen_logits = head(x)
    assert seen_logits.shape == (3, 6) and unseen_logits.shape == (3, 4) and head.num_classes == 4
    for k, v in head.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    # Queries do not interact (no self-attention): scoring all classes at once gives the same per-class logits.
    both = head(x, word_vectors=torch.cat([seen, unseen]))
    torch.testing.assert_close(both, torch.cat([seen_logits, unseen_logits], dim=1), rtol=1e-5, atol=1e-6)


def test_zero_shot_gradients_and_identity_projection():
    head = ZeroShotMLDecoder(word_vectors=torch.randn(5, 10), **KW).train()
    head(torch.randn(2, 12, 3, 3)).sum().backward()
    assert all(p.grad is not None for p in head.parameters())
    same = ZeroShotMLDecoder(in_features=12, word_dim=16, embed_dim=16, num_heads=2, ffn_dim=16)
    assert isinstance(same.word_proj, torch.nn.Identity)  # as the reference, when word_dim == embed_dim
    with pytest.raises(RuntimeError, match="no word vectors"):
        same(torch.randn(1, 12, 2, 2))
    with pytest.raises(ValueError, match=r"\[num_classes, 10\]"):
        head.set_word_vectors(torch.randn(5, 11))


def test_original_zero_shot_layout_converts_to_identical_logits(original_layout):
    torch.manual_seed(0)
    kw = dict(
        head="zero_shot", model_kwargs=dict(layers=[1, 1, 1, 1]), word_dim=10, embed_dim=16, num_heads=2, ffn_dim=32
    )
    source = create_model("resnet18", **kw).eval()  # its weights, written in the original repo's layout
    src = {**source.backbone.state_dict(), **original_layout(source.head.state_dict(), prefix="head.")}
    assert "head.wordvec_proj.weight" in src and src["head.decoder.duplicate_pooling"].shape == (16, 1)
    target = create_model("resnet18", **kw).eval()
    target.load_state_dict(convert_state_dict(src, target, layout="original"))
    wv, x = torch.randn(4, 10), torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(target(x, word_vectors=wv), source(x, word_vectors=wv), rtol=0, atol=0)


def test_query_augmentation_training_shapes_and_targets():
    torch.manual_seed(0)
    wv, y = torch.randn(6, 10) * 3, torch.randint(0, 2, (4, 6)).float()
    aug = QueryAugmentation(noise_std=0.1, num_random_queries=3, random_query_target=1.0).train()
    q, t = aug(wv, y)
    assert q.shape == (9, 10) and t.shape == (4, 9)
    torch.testing.assert_close(t[:, :6], y)
    assert (t[:, 6:] == 1).all()
    _, t0 = QueryAugmentation(num_random_queries=2, random_query_target=0.0).train()(wv, y)
    assert (t0[:, 6:] == 0).all()
    with pytest.raises(ValueError, match="do not match"):
        aug(wv, y[:, :5])
    with pytest.raises(ValueError, match="0 or 1"):
        QueryAugmentation(random_query_target=0.5)
    with pytest.raises(ValueError, match="noise_std"):
        QueryAugmentation(noise_std=-1)


def test_query_augmentation_is_identity_in_eval_mode_and_when_off():
    wv, y = torch.randn(6, 10), torch.ones(2, 6)
    aug = QueryAugmentation(noise_std=0.5, num_random_queries=4).eval()
    q, t = aug(wv, y)
    assert q is wv and t is y
    off = QueryAugmentation().train()
    assert not off.enabled and off(wv, y)[0] is wv


def test_query_augmentation_statistics():
    """Noise: zero mean, std noise_std * RMS(word vectors), fresh each step; random queries: zero mean, std RMS."""
    torch.manual_seed(0)
    wv = torch.randn(500, 300) * 2.5 + 0.5  # RMS = sqrt(2.5^2 + 0.5^2)
    rms = wv.pow(2).mean().sqrt().item()
    y = torch.zeros(2, 500)
    noise = QueryAugmentation(noise_std=0.2).train()
    q1, _ = noise(wv, y)
    q2, _ = noise(wv, y)
    d = q1 - wv
    assert abs(d.mean().item()) < 0.01 * rms
    assert d.std().item() == pytest.approx(0.2 * rms, rel=0.02)
    assert not torch.allclose(q1, q2)  # a fresh draw every call
    rand = QueryAugmentation(num_random_queries=400).train()
    q, t = rand(wv, y)
    torch.testing.assert_close(q[:500], wv, rtol=0, atol=0)  # the seen classes are untouched without noise
    extra = q[500:]
    assert abs(extra.mean().item()) < 0.01 * rms and extra.std().item() == pytest.approx(rms, rel=0.02)


def test_query_augmentation_feeds_the_zero_shot_head():
    torch.manual_seed(0)
    head = ZeroShotMLDecoder(in_features=8, word_dim=6, embed_dim=16, ffn_dim=16, num_heads=2)
    aug = QueryAugmentation(noise_std=0.1, num_random_queries=2).train()
    q, t = aug(torch.randn(5, 6), torch.ones(3, 5))
    logits = head(torch.randn(3, 8, 2, 2), word_vectors=q)
    assert logits.shape == t.shape == (3, 7)


def test_zsl_metrics_protocol():
    scores = torch.tensor([[0.9, 0.1, 0.8, 0.2], [0.2, 0.7, 0.1, 0.9], [0.5, 0.4, 0.3, 0.2]])
    targets = torch.tensor([[1.0, 0, 1, 0], [0, 1, 0, 1], [1, 0, 0, 0]])
    unseen = torch.tensor([False, False, True, True])
    m = zsl_metrics(scores, targets, unseen, topk=(1,))
    # ZSL: unseen columns, rows with an unseen positive (the first two): perfect ranking
    assert m["ZSL_images"] == 2 and m["ZSL_mAP"] == pytest.approx(100.0)
    assert m["ZSL_F1@1"] == pytest.approx(100.0)
    assert m["GZSL_mAP"] == pytest.approx(100 * mean_average_precision(scores, targets))
    # GZSL top-1: rows 0,1,2 predict classes 0,3,0 -> 3 hits of 5 positives, precision 3/3
    assert m["GZSL_F1@1"] == pytest.approx(100 * 2 * 1.0 * 0.6 / 1.6)
    index_form = zsl_metrics(scores, targets, [2, 3], topk=(1,))
    assert index_form == m
    meter = ZeroShotMeter(unseen, topk=(1,))
    meter.update(scores[:2], targets[:2])
    meter.update(scores[2:], targets[2:])
    assert meter.compute() == m


def test_load_zsl_split(tmp_path):
    classes = ["sky", "cat", "dog", "zebra"]
    f = tmp_path / "split.json"
    f.write_text(json.dumps({"train class": ["sky", "cat"], "test class": ["zebra", "dog"]}))
    assert load_zsl_split(f, classes) == ([0, 1], [2, 3])
    f.write_text(json.dumps({"test class": ["zebra"]}))
    assert load_zsl_split(f, classes) == ([0, 1, 2], [3])
    f.write_text(json.dumps({"test class": ["unicorn"]}))
    with pytest.raises(ValueError, match="unicorn"):
        load_zsl_split(f, classes)
    f.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_zsl_split(f, classes)
