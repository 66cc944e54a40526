"""The fall11 and winter21 trees shipped as package data: classes, names, levels, consistency."""

from importlib import resources
from pathlib import Path

import timm

from miil.in21k import SemanticHierarchy, packaged_tree

INFO = Path(timm.__file__).parent / "data" / "_info"


def _timm_list(name: str) -> list[str]:
    return [w for w in (INFO / name).read_text().split() if w]


def test_class_lists_are_timms_and_the_published_sizes():
    fall11, winter21 = packaged_tree("fall11"), packaged_tree("winter21")
    assert len(fall11) == 11221 and len(winter21) == 10450
    assert fall11.class_list == _timm_list("imagenet21k_miil_synsets.txt")
    assert winter21.class_list == _timm_list("imagenet21k_miil_w21_synsets.txt")
    assert fall11.class_list == sorted(fall11.class_list)  # ImageFolder order = output order of the 21K models
    for variant in ("fall11", "winter21"):
        size = (resources.files("miil.in21k") / "resources" / f"{variant}.json.gz").stat().st_size
        assert size < 400_000


def test_names_and_lemmas_agree_with_timms_wordnet_lemma_file():
    lemmas = dict(line.split("\t", 1) for line in (INFO / "imagenet_synset_to_lemma.txt").read_text().splitlines())
    tree = packaged_tree("fall11")
    for wnid, words in zip(tree.class_list, tree.lemmas):
        assert ", ".join(w.replace("_", " ") for w in words) == lemmas[wnid], wnid


def test_levels_statistics_and_known_chains():
    tree = packaged_tree("fall11")
    stats = tree.statistics()
    print("\nfall11 classes per level:")
    for row in stats:
        print("  ", row)
    hist = tree.level_histogram()
    assert sum(hist) == len(tree) and all(h > 0 for h in hist)
    assert [r["classes_at_or_below"] for r in stats] == [sum(hist[d:]) for d in range(len(hist))]
    assert all(r["leaves"] + r["with_children"] == r["classes"] for r in stats)
    for child, parent in enumerate(tree.parents):
        assert parent == -1 or tree.depths[child] == tree.depths[parent] + 1
    # Fig. 2 of the paper: 11 softmax levels (0..10); the deepest depth is never trained by the original code.
    hierarchy = SemanticHierarchy(tree)
    assert hierarchy.depths == list(range(11)) and tree.max_depth == 11
    assert sum(hierarchy.level_sizes) == len(tree) - hist[-1]
    # the released examples: pics/dog_inference.png and the swan of Fig. 2
    assert [tree.names[a] for a in tree.ancestors("n02111889")] == ["spitz", "dog", "domestic_animal", "animal"]
    assert [tree.names[a] for a in tree.ancestors("n01858441")] == ["aquatic_bird", "bird", "vertebrate", "animal"]


def test_winter21_tree_is_the_fall11_tree_restricted_to_its_classes():
    fall11, winter21 = packaged_tree("fall11"), packaged_tree("winter21")
    keep = set(winter21.class_list)
    assert keep <= set(fall11.class_list)
    for wnid in winter21.class_list:
        via_fall11 = [fall11.class_list[a] for a in fall11.ancestors(wnid) if fall11.class_list[a] in keep]
        assert [winter21.class_list[a] for a in winter21.ancestors(wnid)] == via_fall11, wnid
