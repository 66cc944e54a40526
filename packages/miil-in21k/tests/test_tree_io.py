"""The original tree-file format, our JSON format, and the query API."""

import gzip
import json
import pickle
from fractions import Fraction

import numpy as np
import pytest
import torch

from miil.core.errors import UserError
from miil.in21k import SemanticTree, load_tree

#        0 animal   1 bird   2 dog   3 swan   4 spitz   5 Samoyed   6 plant
CLASSES = ["n00015388", "n01503061", "n02084071", "n01858441", "n02111626", "n02111889", "n00017222"]
PARENTS = [-1, 0, 0, 1, 2, 4, -1]
NAMES = ["animal", "bird", "dog", "swan", "spitz", "Samoyed", "plant"]


def _tree() -> SemanticTree:
    return SemanticTree(CLASSES, PARENTS, names=NAMES, lemmas=[[n] for n in NAMES])


def test_original_format_round_trip(tmp_path):
    tree = _tree()
    path = tree.save(tmp_path / "imagenet21k_miil_tree.pth")
    raw = torch.load(path, weights_only=True)  # what the original code reads
    assert set(raw) == {"class_list", "class_description", "class_tree_list"}
    assert raw["class_tree_list"][5] == [5, 4, 2, 0]  # [i, parent, ..., root]
    assert raw["class_tree_list"][6] == [6]
    assert list(raw["class_description"].values()) == NAMES  # class order, as the original indexes it
    back = SemanticTree.load(path)
    assert back == tree and back.depths == [0, 1, 1, 2, 2, 3, 0]


def test_reads_original_files_with_numpy_arrays_and_tensors(tmp_path):
    path = tmp_path / "tree.pth"
    torch.save(
        {
            "class_list": np.array(CLASSES),
            "class_description": {c: np.str_(n) for c, n in zip(CLASSES, NAMES)},
            "class_tree_list": [torch.tensor([0]), [1, 0], [2, 0], np.array([3, 1, 0]), [4, 2, 0], [5, 4, 2, 0], [6]],
        },
        path,
    )
    tree = SemanticTree.load(path)
    assert tree.class_list == CLASSES and tree.parents == PARENTS and tree.names == NAMES


def test_refuses_pickled_objects_and_inconsistent_chains(tmp_path):
    evil = tmp_path / "evil.pth"
    torch.save({"class_list": CLASSES[:1], "class_tree_list": [[0]], "x": Fraction(1, 3)}, evil)
    with pytest.raises(UserError, match="evil.pth holds arbitrary Python objects"):
        SemanticTree.load(evil)
    pickled = tmp_path / "evil.pkl"
    pickled.write_bytes(pickle.dumps({"class_list": CLASSES[:1], "class_tree_list": [[0]], "x": Fraction(1, 3)}))
    with pytest.raises(UserError, match="only dicts, lists, strings and numbers"):
        load_tree(pickled)
    pickled.write_bytes(pickle.dumps(_original_dict()))  # a plain pickle of the original dict is read
    assert load_tree(pickled).class_list == CLASSES
    bad = tmp_path / "bad.pth"
    torch.save({"class_list": CLASSES[:3], "class_tree_list": [[0], [1, 0], [2, 1]]}, bad)
    with pytest.raises(ValueError, match=r"class_tree_list\[2\].*disagrees"):
        SemanticTree.load(bad)
    torch.save({"class_list": CLASSES[:2], "class_tree_list": [[0], [0]]}, bad)
    with pytest.raises(ValueError, match="must start with the class's own index 1"):
        SemanticTree.load(bad)
    with pytest.raises(ValueError, match="cycle"):
        SemanticTree(["a", "b", "c"], [2, 0, 1])
    with pytest.raises(ValueError, match="more than once"):
        SemanticTree(["a", "a"], [-1, -1])


def test_json_gz_is_deterministic_and_round_trips(tmp_path):
    tree = _tree()
    a = tree.save(tmp_path / "a.json.gz").read_bytes()
    b = tree.save(tmp_path / "b.json.gz").read_bytes()
    assert a == b
    back = load_tree(str(tmp_path / "a.json.gz"))
    assert back == tree and back.lemmas == tree.lemmas
    plain = load_tree(tree.save(tmp_path / "c.json"))
    assert plain == tree
    with pytest.raises(ValueError, match="unknown tree file type"):
        tree.save(tmp_path / "t.txt")
    with pytest.raises(FileNotFoundError, match="neither a shipped variant"):
        load_tree("fall12")


def test_query_api():
    tree = _tree()
    info = tree.describe("Samoyed")
    assert info.index == 5 and info.level == 3
    assert info.ancestors == ("n02111626", "n02084071", "n00015388")
    assert info.ancestor_names == ("spitz", "dog", "animal")
    assert tree.describe("n00015388").children == ("n01503061", "n02084071")
    assert tree.descendants("animal") == [1, 2, 3, 4, 5]
    assert tree.classes_at_level(1) == [1, 2]
    assert tree.level_histogram() == [2, 2, 2, 1]
    stats = tree.statistics()
    assert [r["classes_at_or_below"] for r in stats] == [7, 5, 3, 1]
    assert sum(r["leaves"] + r["with_children"] for r in stats) == len(tree)
    assert tree.resolve(3) == 3 and tree.resolve("3") == 3
    with pytest.raises(KeyError, match="no class"):
        tree.resolve("cat")
    with pytest.raises(IndexError):
        tree.index(7)


def _original_dict() -> dict:
    """The original tree-file dict, written out by hand: [i, parent, ..., root] per class."""
    return {
        "class_list": CLASSES,
        "class_description": dict(zip(CLASSES, NAMES)),
        "class_tree_list": [[0], [1, 0], [2, 0], [3, 1, 0], [4, 2, 0], [5, 4, 2, 0], [6]],
    }


@pytest.mark.parametrize("suffix", [".pth", ".json", ".json.gz"])
def test_load_tree_reads_the_original_dict_as_torch_file_or_json(tmp_path, suffix):
    path = tmp_path / f"imagenet21k_miil_tree{suffix}"
    if suffix == ".pth":
        torch.save(_original_dict(), path)
    elif suffix == ".json":
        path.write_text(json.dumps(_original_dict()))
    else:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            json.dump(_original_dict(), fh)
    tree = load_tree(path)
    assert tree.class_list == CLASSES and tree.parents == PARENTS and tree.names == NAMES
    assert tree.depths == [0, 1, 1, 2, 2, 3, 0]
    assert tree.to_original() == _original_dict()


def test_json_that_is_no_tree_is_refused_with_both_formats_named(tmp_path):
    path = tmp_path / "tree.json"
    path.write_text(json.dumps({"class_list": CLASSES}))
    with pytest.raises(ValueError, match="nor the original tree dict"):
        load_tree(path)
    inconsistent = [[0], [1, 0], [2, 1]] + [[i] for i in range(3, 7)]
    path.write_text(json.dumps({**_original_dict(), "class_tree_list": inconsistent}))
    with pytest.raises(ValueError, match=r"class_tree_list\[2\].*disagrees"):
        load_tree(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="holds a JSON list"):
        load_tree(path)
