import argparse
import dataclasses
import json
import subprocess
import sys

import pytest
import torch

from miil.core.cli import HelpFormatter, main
from miil.core.config import add_dataclass_arguments, dataclass_from_args, pick_recipe, recipe_to_dict
from miil.core.io import save_safetensors
from miil.core.train import TrainConfig


@dataclasses.dataclass(frozen=True)
class _Recipe(TrainConfig):
    model: str = dataclasses.field(default="tresnet_m", metadata={"help": "timm backbone"})
    img_size: int = 224
    scales: tuple[float, float] = (0.08, 1.0)
    teacher: str | None = None


def test_recipe_fields_become_options_with_defaults_in_help():
    parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
    add_dataclass_arguments(parser, _Recipe(lr=2e-4), group="recipe")
    text = parser.format_help()
    assert "--img-size" in text and "--clip-grad" in text and "(default: 0.0002)" in text
    args = parser.parse_args(["--img-size", "448", "--amp", "true", "--scales", "0.5", "1", "--teacher", "none"])
    recipe = dataclass_from_args(_Recipe(lr=2e-4), args)
    assert recipe.img_size == 448 and recipe.amp is True and recipe.scales == (0.5, 1.0) and recipe.teacher is None
    assert recipe.lr == 2e-4 and recipe.model == "tresnet_m"
    json.dumps(recipe_to_dict(recipe))  # the resolved recipe is JSON-ready for the run directory
    with pytest.raises(SystemExit):
        parser.parse_args(["--amp", "maybe"])


def test_only_given_options_override_a_recipe_chosen_at_run_time():
    parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
    parser.add_argument("--recipe", default="small")
    add_dataclass_arguments(parser, _Recipe, only_if_given=True)
    recipes = {"small": _Recipe(img_size=96, lr=3e-4), "large": _Recipe(img_size=448, lr=1e-4)}
    args = parser.parse_args(["--recipe", "large", "--lr", "5e-5", "--scales", "0.2", "1"])
    assert not hasattr(args, "img_size")  # not on the command line: the recipe keeps its own value
    recipe = dataclass_from_args(pick_recipe(recipes, args.recipe), args)
    assert recipe.img_size == 448 and recipe.lr == 5e-5 and recipe.scales == (0.2, 1.0)
    assert "==SUPPRESS==" not in parser.format_help()
    shown = argparse.ArgumentParser(formatter_class=HelpFormatter)
    add_dataclass_arguments(shown, recipes["small"], only_if_given=True, recipe_name="small")
    assert "[small: 96]" in shown.format_help() and shown.parse_args([]) == argparse.Namespace()


def test_pick_recipe_lists_known_names():
    with pytest.raises(KeyError, match="coco-tresnet-l"):
        pick_recipe({"coco-tresnet-l": _Recipe()}, "coco")


def test_miil_list_and_help(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "core" in out and "miil-core" in out
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0
    assert "--long" in capsys.readouterr().out


def test_unknown_demo_is_an_error(capsys):
    assert main(["demo", "no-such-package"]) == 2
    assert "no-such-package" in capsys.readouterr().err


def test_core_inspect_reads_safetensors_without_unpickling(tmp_path, capsys):
    path = tmp_path / "w.safetensors"
    save_safetensors({"a.weight": torch.zeros(3, 4), "b": torch.ones(2)}, path)
    assert main(["core", "inspect", str(path), "--summary"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary == {"tensors": 2, "parameters": 14, "other_top_level_keys": []}


def test_console_script_is_installed():
    proc = subprocess.run([sys.executable, "-m", "miil.core.cli", "list"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "core" in proc.stdout
