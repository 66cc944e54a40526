"""The dialect checker on synthetic parsers: a parser built with the helpers passes, and each rule can fail."""

import argparse

import pytest

from miil.core.cli import ArgumentParser
from miil.core.cli_args import (
    add_data_args,
    add_device,
    add_json,
    add_model,
    add_model_kwargs,
    add_out_dir,
    add_output,
    add_progress,
    add_recipe,
    add_recipes_verb,
    add_resume,
    add_strict,
    add_threshold,
    add_top_k,
    add_weights,
)
from miil.core.cli_dialect import dialect_problems, iter_package_parsers

RECIPES = {"coco-tresnet-m": object(), "voc-resnet50": object()}


def _clean(convert: bool = True) -> tuple[ArgumentParser, argparse._SubParsersAction]:
    """A package parser written with the helpers only."""
    root = ArgumentParser(prog="miil good")
    sub = root.add_subparsers(dest="verb")
    add_recipes_verb(sub, RECIPES)
    train = sub.add_parser("train")
    add_recipe(train, RECIPES, "coco-tresnet-m")
    add_data_args(train, ("coco", "folder"))
    add_out_dir(train)
    add_resume(train)
    add_progress(train)
    add_model_kwargs(train)
    validate = sub.add_parser("validate")
    add_weights(validate)
    add_data_args(validate, ("coco",), splits=("val",))
    add_json(validate)
    add_device(validate)
    infer = sub.add_parser("infer")
    infer.add_argument("inputs", nargs="+")
    add_weights(infer)
    add_top_k(infer)
    add_threshold(infer)
    add_strict(infer)
    if convert:
        conv = sub.add_parser("convert")
        conv.add_argument("source")
        add_output(conv)
        add_model(conv)
    return root, sub


def test_a_parser_built_with_the_helpers_passes():
    root, _ = _clean()
    assert dialect_problems(root, package="good", convert=True) == []


def _one_verb(*flags_and_kwargs: tuple[str, dict]) -> list[str]:
    root, sub = _clean()
    extra = sub.add_parser("extra")
    for flag, kwargs in flags_and_kwargs:
        extra.add_argument(flag, **kwargs)
    return dialect_problems(root, package="good", convert=True)


@pytest.mark.parametrize(
    ("flag", "kwargs", "expected"),
    [
        ("--data-dir", {}, "--data-dir is a synonym: the dialect spells it --data-root"),
        ("--train", {}, "--train is a synonym"),
        ("--val-root", {}, "--val-root is a synonym"),
        ("--checkpoint", {}, "--checkpoint is a synonym"),
        ("--run", {}, "--run is a synonym: the dialect spells it --weights"),
        ("--which", {"choices": ("best", "last")}, "--which is a synonym"),
        ("--out", {}, "--out is a synonym"),
        ("--to", {}, "--to is a synonym"),
        ("--metrics-json", {}, "--metrics-json is a synonym: the dialect spells it --json"),
        ("--topk", {"type": int}, "--topk is a synonym: the dialect spells it --top-k"),
        ("--no-progress", {"action": "store_true"}, "--no-progress is a synonym"),
        ("--strict-images", {"action": "store_true"}, "--strict-images is a synonym"),
        ("--re-prob", {"type": float}, "--re-prob is a synonym"),
        ("--smoothing", {"type": float}, "--smoothing is a synonym"),
        ("--alpha-kd", {"type": float}, "--alpha-kd is a synonym"),
        ("--kd-alpha", {"type": float}, "--kd-alpha is a synonym"),
        ("--backbone-kwargs", {}, "--backbone-kwargs is a synonym"),
        ("--model-args", {}, "--model-args is a synonym"),
        ("--spatial-checkpoint", {}, "--spatial-checkpoint is a synonym"),
        ("--initial-checkpoint", {}, "--initial-checkpoint is a synonym"),
        ("--no-filter-backbone", {"action": "store_true"}, "--no-filter-backbone: booleans are --filter-backbone"),
        ("--no-ema", {"action": "store_false", "dest": "ema"}, "--no-ema: booleans are --ema [BOOL]"),
        ("--weights", {"nargs": "*"}, "--weights takes exactly one value"),
        ("--json", {"action": "store_true"}, "--json takes exactly one value"),
        ("--json", {"nargs": "?", "const": "-"}, "--json takes exactly one value"),
        ("--output", {"nargs": 2}, "--output takes exactly one value"),
        ("--strict", {"action": "store_true"}, "--strict is a boolean role"),
        ("--progress", {"type": str, "default": "true"}, "--progress is a boolean role"),
        ("--amp", {"action": "store_true"}, "--amp is a boolean role"),
        ("--resume", {"action": "store_true"}, "--resume is a boolean role"),
        ("--pretrained", {"action": argparse.BooleanOptionalAction}, "--pretrained is a boolean role"),
        ("--top-k", {}, "--top-k takes one integer"),
        ("--top-k", {"type": int, "nargs": "+"}, "--top-k takes one integer"),
        ("--batch-size", {"type": float}, "--batch-size takes one integer"),
        ("--threshold", {"type": int}, "--threshold takes one number"),
        ("--summary", {"action": "store_true"}, "--summary is a switch without a value"),
    ],
)
def test_each_flag_rule_can_fail(flag, kwargs, expected):
    problems = _one_verb((flag, kwargs))
    assert len(problems) >= 1, problems
    assert any(p.startswith("miil good extra: ") and expected in p for p in problems), problems


def test_recipe_names_must_be_kebab_case_once_per_package():
    root, sub = _clean()
    for verb in ("a", "b"):
        add_recipe(sub.add_parser(verb), {"STAM-16": 1, "esc50_eat_s": 2}, "STAM-16")
    problems = dialect_problems(root, package="good", convert=True)
    assert problems == [
        "miil good: recipe name 'STAM-16' is not kebab-case (use 'stam-16')",
        "miil good: recipe name 'esc50_eat_s' is not kebab-case (use 'esc50-eat-s')",
    ]


def test_missing_standard_verbs_and_convert_on_request():
    root, _ = _clean(convert=False)
    assert dialect_problems(root, package="good") == []
    assert dialect_problems(root, package="good", convert=True) == ["miil good: missing the standard verb 'convert'"]
    bare = ArgumentParser(prog="miil bare")
    sub = bare.add_subparsers()
    sub.add_parser("predict")
    sub.add_parser("search")
    problems = dialect_problems(bare, package="bare")
    assert "miil bare: verb 'predict' is a synonym: the dialect calls it 'infer'" in problems
    for verb in ("recipes", "train", "validate", "infer"):
        assert f"miil bare: missing the standard verb {verb!r}" in problems
    assert dialect_problems(bare, package="bare", verbs=()) == [problems[0]]


def test_nested_verbs_are_walked():
    root, sub = _clean()
    tree = sub.add_parser("tree").add_subparsers()
    tree.add_parser("build").add_argument("--out")
    problems = dialect_problems(root, package="good", convert=True)
    assert problems == [
        "miil good tree build: --out is a synonym: the dialect spells it --output (a file) or --out-dir (a run folder)"
    ]


def test_unrecognised_synonym_names_the_dialect_spelling(capsys):
    root, _ = _clean()
    with pytest.raises(SystemExit) as exc:
        root.parse_args(["infer", "a.jpg", "--weights", "r", "--topk", "3"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(
        "miil good infer: error: unrecognized arguments: --topk 3 (the miil spelling: --topk -> --top-k)"
    )


def test_core_package_parser_is_in_dialect():
    parsers = dict(iter_package_parsers(["core"]))
    assert list(parsers) == ["core"]
    assert dialect_problems(parsers["core"], package="core", verbs=()) == []
    with pytest.raises(KeyError, match="no-such-package"):
        dict(iter_package_parsers(["no-such-package"]))
