"""The vectorized semantic softmax equals a per-sample loop written from the paper's equations (value and gradient)."""

import math

import pytest
import torch
import torch.nn.functional as F

from miil.in21k import SemanticHierarchy, SemanticSoftmaxLoss, SemanticTree, packaged_tree, semantic_softmax_loss


def random_tree(num_classes: int, seed: int) -> SemanticTree:
    g = torch.Generator().manual_seed(seed)
    parents = [-1] * 3
    for c in range(3, num_classes):
        parents.append(int(torch.randint(0, c, (1,), generator=g)))
    return SemanticTree([f"c{i:04d}" for i in range(num_classes)], parents)


def reference_loss(logits, targets, tree, *, eps=0.2, include_deepest=False, clamp=20.0):
    """Per sample, per depth: the label's ancestor at that depth, a smoothed one-hot over the depth's classes, CE."""
    depths = tree.depths
    max_depth = max(depths)
    num_classes = len(depths)
    last = max_depth + 1 if include_deepest else max_depth
    levels = [d for d in range(last) if depths.count(d) > 1]
    total = logits.new_zeros(())
    batch = logits.shape[0]
    for d in levels:
        members = [c for c in range(num_classes) if depths[c] == d]
        weight = min(clamp, num_classes / sum(1 for x in depths if x >= d))
        level_sum = logits.new_zeros(())
        for b in range(batch):
            chain = [int(targets[b]), *tree.ancestors(int(targets[b]))]  # label ... root
            at_depth = [c for c in chain if depths[c] == d]
            if not at_depth:
                continue
            log_p = F.log_softmax(logits[b, members], dim=0)
            q = torch.full((len(members),), eps / len(members))
            q[members.index(at_depth[0])] += 1 - eps
            level_sum = level_sum - (q * log_p).sum()
        total = total + weight * level_sum / batch
    return total


@pytest.mark.parametrize("include_deepest", [False, True])
def test_matches_the_per_sample_reference_value_and_gradient(include_deepest):
    tree = random_tree(120, seed=0)
    hierarchy = SemanticHierarchy(tree, include_deepest=include_deepest)
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(24, len(tree), generator=g, dtype=torch.float64)
    targets = torch.randint(0, len(tree), (24,), generator=g)
    ours_in = logits.clone().requires_grad_(True)
    ref_in = logits.clone().requires_grad_(True)
    ours = semantic_softmax_loss(ours_in, targets, hierarchy)
    ref = reference_loss(ref_in, targets, tree, include_deepest=include_deepest)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours.double(), ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours_in.grad, ref_in.grad, rtol=1e-4, atol=1e-6)


def test_matches_the_reference_on_the_fall11_tree():
    tree = packaged_tree("fall11")
    loss = SemanticSoftmaxLoss(tree)
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(6, len(tree), generator=g)
    targets = torch.tensor([tree.index("n02111889"), tree.index("n01858441"), 0, 5000, 11220, tree.index("n00015388")])
    torch.testing.assert_close(loss(logits, targets), reference_loss(logits, targets, tree), rtol=1e-5, atol=1e-5)


def test_level_weights_targets_and_the_skipped_middle_level():
    # depth 0: a, b | depth 1: c (alone: not trained) | depth 2: d, e | depth 3: f, g
    tree = SemanticTree(list("abcdefg"), [-1, -1, 0, 2, 2, 3, 3])
    h = SemanticHierarchy(tree)
    assert h.depths == [0, 2]  # depth 1 has one class, depth 3 is the deepest
    torch.testing.assert_close(h.level_weights, torch.tensor([min(20, 7 / 7), 7 / 4]))
    assert h.semantic_targets(torch.tensor([5, 1, 2])).tolist() == [[0, 0], [1, -1], [0, -1]]
    assert SemanticHierarchy(tree, include_deepest=True).depths == [0, 2, 3]
    assert SemanticHierarchy(packaged_tree("fall11"), max_level_weight=None).level_weights.max() > 20


def test_no_label_smoothing_is_the_mean_of_level_cross_entropies():
    tree = random_tree(60, seed=3)
    h = SemanticHierarchy(tree)
    logits, targets = torch.randn(16, 60), torch.randint(0, 60, (16,))
    expected = 0.0
    level_targets = h.semantic_targets(targets)
    for level, z in enumerate(h.split_logits(logits)):
        t = level_targets[:, level]
        if (t >= 0).any():
            ce = F.cross_entropy(z[t >= 0], t[t >= 0], reduction="sum") / len(targets)
            expected += float(h.level_weights[level]) * float(ce)
    assert math.isclose(float(semantic_softmax_loss(logits, targets, h, label_smoothing=0.0)), expected, rel_tol=1e-5)


def test_deepest_level_logits_get_gradient_only_with_the_option():
    tree = SemanticTree(list("abcdef"), [-1, -1, 0, 0, 2, 2])  # depths 0,0,1,1,2,2
    logits = torch.randn(4, 6, requires_grad=True)
    targets = torch.tensor([4, 5, 3, 1])
    SemanticSoftmaxLoss(tree)(logits, targets).backward()
    assert torch.all(logits.grad[:, 4:] == 0) and torch.any(logits.grad[:, :4] != 0)
    logits.grad = None
    SemanticSoftmaxLoss(tree, include_deepest=True)(logits, targets).backward()
    assert torch.any(logits.grad[:, 4:] != 0)


def test_bfloat16_logits_ignored_targets_and_errors():
    tree = random_tree(40, seed=4)
    loss = SemanticSoftmaxLoss(tree)
    logits = torch.randn(8, 40)
    targets = torch.randint(0, 40, (8,))
    low = loss(logits.bfloat16(), targets)
    assert low.dtype == torch.float32 and torch.isfinite(low)
    ignored = targets.clone()
    ignored[:4] = -1
    part = loss(logits, ignored)
    assert math.isclose(float(part), float(loss(logits[4:], targets[4:])) / 2, rel_tol=1e-5)
    with pytest.raises(ValueError, match=r"logits \[B, 40\]"):
        loss(torch.randn(8, 41), targets)
    with pytest.raises(ValueError, match="outside"):
        loss(logits, torch.full((8,), 40))


def per_level_autograd(logits, targets, h, eps=0.2):
    """The loss level by level through autograd (log-softmax, gather, mean): ``[L]`` weighted level losses."""
    level_targets = h.semantic_targets(targets)
    out = []
    for level, z in enumerate(h.split_logits(logits)):
        t = level_targets[:, level]
        log_p = F.log_softmax(z, dim=1)
        ce = -(1 - eps) * log_p.gather(1, t.clamp(min=0)[:, None]).squeeze(1) - eps * log_p.mean(dim=1)
        out.append(h.level_weights[level].to(logits.dtype) * torch.where(t >= 0, ce, 0.0).sum() / len(targets))
    return torch.stack(out)


def test_fused_backward_matches_autograd_for_any_upstream_gradient_and_twice_with_retain_graph():
    tree = random_tree(90, seed=5)
    h = SemanticHierarchy(tree)
    g = torch.Generator().manual_seed(6)
    logits = torch.randn(10, 90, generator=g) * 3
    targets = torch.randint(0, 90, (10,), generator=g)
    targets[2] = -1
    upstream = torch.randn(h.num_levels, generator=g)
    ours_in = logits.clone().requires_grad_(True)
    ref_in = logits.double().requires_grad_(True)
    ours = semantic_softmax_loss(ours_in, targets, h, reduction="none")
    ref = per_level_autograd(ref_in, targets, h)
    torch.testing.assert_close(ours.double(), ref, rtol=1e-5, atol=1e-6)
    (ours * upstream).sum().backward(retain_graph=True)
    (ref * upstream.double()).sum().backward()
    torch.testing.assert_close(ours_in.grad.double(), ref_in.grad, rtol=1e-4, atol=1e-6)
    assert torch.all(ours_in.grad[2] == 0)  # an ignored sample gets no gradient
    first = ours_in.grad.clone()
    ours_in.grad = None
    (ours * upstream).sum().backward()  # the saved probabilities were not overwritten by the first backward
    torch.testing.assert_close(ours_in.grad, first, rtol=0, atol=0)


def test_levels_far_apart_and_a_dominant_untrained_logit_stay_finite_and_exact():
    tree = random_tree(80, seed=7)
    h = SemanticHierarchy(tree)
    logits = torch.randn(6, 80, dtype=torch.float64)
    depths = torch.tensor(tree.depths)
    logits += torch.where(depths == 0, 300.0, -300.0).double()  # one level 600 above the others
    logits[:, depths == max(tree.depths)] = 1e4  # the untrained deepest level dwarfs everything
    targets = torch.randint(0, 80, (6,))
    ours_in = logits.clone().requires_grad_(True)
    ref_in = logits.clone().requires_grad_(True)
    ours = semantic_softmax_loss(ours_in, targets, h)
    ref = per_level_autograd(ref_in, targets, h).sum()
    ours.backward()
    ref.backward()
    assert torch.isfinite(ours) and torch.isfinite(ours_in.grad).all()
    torch.testing.assert_close(ours.double(), ref, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(ours_in.grad, ref_in.grad, rtol=1e-4, atol=1e-6)


def test_empty_batch_gives_zero_loss_and_an_empty_gradient():
    h = SemanticHierarchy(random_tree(30, seed=8))
    logits = torch.randn(0, 30, requires_grad=True)
    value = semantic_softmax_loss(logits, torch.zeros(0, dtype=torch.long), h)
    value.backward()
    assert value.item() == 0.0 and logits.grad.shape == (0, 30)
