"""The dialect's helpers: one spelling per role, one boolean form, JSON model kwargs, the recipes verb."""

import dataclasses

import pytest

from miil.core.cli import ArgumentParser
from miil.core.cli_args import (
    ROLES,
    BoolAction,
    add_data_args,
    add_json,
    add_model_kwargs,
    add_recipe,
    add_recipes_verb,
    add_role,
    add_strict,
    add_top_k,
    add_weights,
    parse_bool,
    parse_model_kwargs,
    print_plot_hint,
)
from miil.core.config import add_dataclass_arguments, dataclass_from_args, pick_recipe, recipe_name_problems
from miil.core.errors import UserError
from miil.core.train import TrainConfig


def _infer_parser() -> ArgumentParser:
    p = ArgumentParser(prog="miil demo-pkg infer")
    p.add_argument("inputs", nargs="+")
    add_strict(p)
    add_role(p, "progress")
    add_top_k(p)
    return p


@pytest.mark.parametrize(
    ("argv", "strict"),
    [
        ([], False),
        (["--strict"], True),
        (["--strict", "false"], False),
        (["--strict", "No"], False),
        (["--strict", "1"], True),
        (["--strict=yes"], True),
        (["--strict=0"], False),
    ],
)
def test_one_boolean_form(argv, strict):
    args = _infer_parser().parse_args([*argv, "a.jpg"])
    assert args.strict is strict and args.inputs == ["a.jpg"]


def test_boolean_flag_does_not_swallow_a_following_positional():
    args = _infer_parser().parse_args(["--strict", "photo.jpg", "other.jpg", "--top-k", "3"])
    assert args.strict is True and args.inputs == ["photo.jpg", "other.jpg"] and args.top_k == 3
    args = _infer_parser().parse_args(["--top-k", "3", "--progress", "photo.jpg"])
    assert args.progress is True and args.inputs == ["photo.jpg"]
    after_dashes = _infer_parser().parse_args(["--strict", "false", "--", "--strict"])
    assert after_dashes.strict is False and after_dashes.inputs == ["--strict"]


def test_bad_boolean_is_a_one_line_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        _infer_parser().parse_args(["a.jpg", "--progress=maybe"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("miil demo-pkg infer: error:") and "'maybe'" in err


def test_parse_bool_literals():
    assert [parse_bool(t) for t in ("true", "YES", "1", "on")] == [True] * 4
    assert [parse_bool(t) for t in ("false", "No", "0", "off")] == [False] * 4
    with pytest.raises(Exception, match="expected a boolean"):
        parse_bool("2")


def test_model_kwargs_parse_and_errors_name_the_text():
    assert parse_model_kwargs('{"drop_path_rate": 0.1}') == {"drop_path_rate": 0.1}
    assert parse_model_kwargs(None) == {} and parse_model_kwargs({"a": 1}) == {"a": 1}
    with pytest.raises(UserError, match=r"'\{drop: 1\}' is not valid JSON"):
        parse_model_kwargs("{drop: 1}")
    with pytest.raises(UserError, match=r"'\[1, 2\]' is a JSON list"):
        parse_model_kwargs("[1, 2]")
    p = ArgumentParser(prog="miil x train")
    add_model_kwargs(p)
    assert p.parse_args([]).model_kwargs == {}
    assert p.parse_args(["--model-kwargs", '{"in_chans": 1}']).model_kwargs == {"in_chans": 1}
    with pytest.raises(SystemExit):
        p.parse_args(["--model-kwargs", "nope"])


def test_roles_have_one_spelling_and_help():
    flags = [flag for flag, _ in ROLES.values()]
    assert len(flags) == len(set(flags))
    for role, (flag, kwargs) in ROLES.items():
        assert flag == "--" + role.replace("_", "-"), role
        assert kwargs.get("help"), role
    with pytest.raises(KeyError, match="unknown argument role 'data_dir'"):
        add_role(ArgumentParser(), "data_dir")


def test_data_args_follow_the_table():
    p = ArgumentParser(prog="miil x validate")
    add_data_args(p, ("coco", "folder"), splits=("val",))
    add_weights(p)
    add_json(p)
    args = p.parse_args(["--data-root", "d", "--val-split", "val2014", "--weights", "runs/a", "--json", "m.json"])
    assert (args.data_format, args.data_root, args.val_split, args.val_labels) == ("coco", "d", "val2014", None)
    assert args.weights == "runs/a" and args.json == "m.json"
    assert not hasattr(args, "train_split")
    with pytest.raises(SystemExit):
        p.parse_args(["--data-root", "d"])  # --weights is required
    with pytest.raises(ValueError, match="splits"):
        add_data_args(ArgumentParser(), ("csv",), splits=("test",))


@dataclasses.dataclass(frozen=True)
class _Recipe(TrainConfig):
    """A tiny recipe for tests."""

    img_size: int = 64


def test_recipe_bools_use_the_boolean_form():
    p = ArgumentParser()
    add_dataclass_arguments(p, _Recipe)
    assert isinstance(p._option_string_actions["--amp"], BoolAction)
    r = dataclass_from_args(_Recipe(), p.parse_args(["--ema", "--amp", "false", "--progress=no"]))
    assert r.ema is True and r.amp is False and r.progress is False
    given = ArgumentParser()
    add_dataclass_arguments(given, _Recipe(ema=True), only_if_given=True)
    assert vars(given.parse_args(["--ema", "false"])) == {"ema": False, "_miil_prog": given.prog}


def test_recipe_names_must_be_kebab_case():
    assert recipe_name_problems({"coco-tresnet-l-448": 1, "stam-16": 2}) == []
    problems = recipe_name_problems(["STAM-16", "esc50_eat_s", "ok-name", "double--dash"])
    assert len(problems) == 3
    assert "'stam-16'" in problems[0] and "'esc50-eat-s'" in problems[1] and "'double--dash'" in problems[2]


def test_recipes_verb_lists_and_shows(capsys):
    recipes = {"tiny-64": _Recipe(), "tiny-96": _Recipe(img_size=96)}
    p = ArgumentParser(prog="miil x")
    sub = p.add_subparsers(dest="verb")
    add_recipes_verb(sub, recipes)
    train = sub.add_parser("train")
    add_recipe(train, recipes, "tiny-64")
    args = p.parse_args(["recipes"])
    assert args.func(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["tiny-64  _Recipe: A tiny recipe for tests.", "tiny-96  _Recipe: A tiny recipe for tests."]
    args = p.parse_args(["recipes", "tiny-96"])
    assert args.func(args) == 0
    shown = capsys.readouterr().out
    assert "--img-size" in shown and " 96" in shown and "--batch-size" in shown
    with pytest.raises(SystemExit):
        p.parse_args(["recipes", "tiny-128"])
    assert "invalid choice: 'tiny-128'" in capsys.readouterr().err
    assert p.parse_args(["train"]).recipe == "tiny-64"
    with pytest.raises(UserError, match="unknown recipe 'big'; known recipes: tiny-64, tiny-96") as exc:
        pick_recipe(recipes, "big")
    assert isinstance(exc.value, KeyError)  # callers that caught KeyError still do


def test_plot_hint(capsys, monkeypatch):
    print_plot_hint("runs/a")
    assert capsys.readouterr().out == "plot: miil plot runs/a\n"
    monkeypatch.setenv("RANK", "1")
    print_plot_hint("runs/a")
    assert capsys.readouterr().out == ""
