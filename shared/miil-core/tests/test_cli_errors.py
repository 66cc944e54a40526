"""Error style of the ``miil`` command: user errors are one line and exit 2, ``--debug`` shows the traceback, bugs
exit 1 with their traceback, a command's int return is the exit status."""

import argparse
import json
import subprocess
import sys

import pytest

from miil.core.cli import ArgumentParser, main, package_main
from miil.core.errors import EXIT_SKIPPED_INPUTS, UserError


def _register_raising(exc: BaseException | None, result=0):
    def command(args):
        if exc is not None:
            raise exc
        return result

    def register(parser: argparse.ArgumentParser) -> None:
        assert isinstance(parser, ArgumentParser)
        sub = parser.add_subparsers(dest="verb")
        p = sub.add_parser("train")
        assert isinstance(p, ArgumentParser)  # packages get the miil parser through add_subparsers
        p.add_argument("--epochs", type=int, default=1)
        p.set_defaults(func=command)

    return register


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.strip()


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (
            UserError("recipe coco-tresnet-l-448 is multi-label; the data is single-label: use --recipe x"),
            "recipe coco",
        ),
        (
            FileNotFoundError(2, "No such file or directory", "data/train.csv"),
            "No such file or directory: data/train.csv",
        ),
        (FileNotFoundError("no images in folder photos/"), "no images in folder photos/"),
        (FileExistsError("runs/a holds a run; use --resume"), "runs/a holds a run"),
        (IsADirectoryError(21, "Is a directory", "runs"), "Is a directory: runs"),
        (NotADirectoryError("x is not a folder"), "x is not a folder"),
        (PermissionError(13, "Permission denied", "/root/x"), "Permission denied: /root/x"),
        (ValueError("--epochs must be positive, got -1\nsecond line"), "--epochs must be positive, got -1"),
    ],
)
def test_user_errors_print_one_line_and_exit_2(capsys, exc, message):
    assert package_main("pkg", _register_raising(exc), ["train"]) == 2
    line = _one_line(capsys)
    assert line.startswith("miil pkg train: error: ") and message in line
    assert "second line" not in line


def test_core_error_classes_are_user_errors(capsys, tmp_path):
    from miil.core.data import UnreadableFileError
    from miil.core.io import KeyMappingError, UnsafeCheckpointError

    assert package_main("pkg", _register_raising(UnsafeCheckpointError("x.pth holds pickled objects")), ["train"]) == 2
    assert "error: x.pth holds pickled objects" in _one_line(capsys)
    err = UnreadableFileError(tmp_path / "a.jpg", OSError("truncated"))
    assert package_main("pkg", _register_raising(err), ["train"]) == 2
    assert "cannot read image file" in _one_line(capsys)
    keys = KeyMappingError("3 keys do not map", unmapped=["head.w", "head.b"], missing=["fc.weight"])
    assert package_main("pkg", _register_raising(keys), ["train"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "miil pkg train: error: 3 keys do not map"
    assert "head.w" in "\n".join(lines[1:]) and "fc.weight" in "\n".join(lines[1:])  # the listing, below the line


def test_debug_anywhere_reraises_with_the_traceback(monkeypatch):
    register = _register_raising(ValueError("bad value"))
    with pytest.raises(ValueError, match="bad value"):
        package_main("pkg", register, ["--debug", "train"])
    with pytest.raises(ValueError, match="bad value"):
        package_main("pkg", register, ["train", "--epochs", "2", "--debug"])
    monkeypatch.setenv("MIIL_DEBUG", "1")
    with pytest.raises(ValueError, match="bad value"):
        package_main("pkg", register, ["train"])


def test_a_bug_prints_its_traceback_and_exits_1(capsys):
    assert package_main("pkg", _register_raising(ZeroDivisionError("division by zero")), ["train"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "ZeroDivisionError: division by zero" in err
    assert err.strip().splitlines()[-1] == "miil pkg train: internal error (a bug, the traceback is above)"


def test_return_value_is_the_exit_status():
    assert package_main("pkg", _register_raising(None, EXIT_SKIPPED_INPUTS), ["train"]) == 3
    assert package_main("pkg", _register_raising(None, None), ["train"]) == 0


def test_a_skipped_input_is_one_warning_line(capsys):
    """The bad-input contract: one line per skipped input, naming the file and the reason (no source line)."""
    import warnings

    from miil.core.data import UnreadableFileWarning

    def register(parser):
        def command(args):
            warnings.warn("skipping unreadable file a/b.jpg: empty file", UnreadableFileWarning, stacklevel=1)
            return EXIT_SKIPPED_INPUTS

        parser.add_subparsers(dest="verb").add_parser("infer").set_defaults(func=command)

    def show(message, category, filename, lineno, file=None, line=None):  # Python's default, not pytest's recorder
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        assert package_main("pkg", register, ["infer"]) == EXIT_SKIPPED_INPUTS
    assert capsys.readouterr().err == "miil pkg infer: warning: skipping unreadable file a/b.jpg: empty file\n"


def test_usage_errors_are_one_line_naming_the_verb(capsys):
    register = _register_raising(None)
    with pytest.raises(SystemExit) as exc:
        package_main("pkg", register, ["train", "--epochs", "many"])
    assert exc.value.code == 2
    line = _one_line(capsys)
    assert line.startswith("miil pkg train: error: argument --epochs: invalid int value: 'many'")
    with pytest.raises(SystemExit):
        package_main("pkg", register, ["train", "--data-dir", "d"])
    line = _one_line(capsys)
    assert line.startswith("miil pkg train: error: unrecognized arguments: --data-dir d")
    assert "--data-dir -> --data-root" in line
    with pytest.raises(SystemExit):
        package_main("pkg", register, ["trian"])
    assert _one_line(capsys).startswith("miil pkg: error: argument verb: invalid choice: 'trian'")


def test_top_level_commands_use_the_same_style(capsys, tmp_path):
    assert main(["plot", str(tmp_path / "no-run")]) == 2
    line = _one_line(capsys)
    assert line.startswith("miil plot: error: no metrics file") and "no-run" in line
    with pytest.raises(SystemExit) as exc:
        main(["plot"])
    assert exc.value.code == 2
    assert _one_line(capsys).startswith("miil plot: error: the following arguments are required: RUN_DIR")


def test_console_script_error_in_a_subprocess(tmp_path):
    """What a user sees from a real process: one line on stderr, status 2; with --debug, the traceback."""
    run = [sys.executable, "-m", "miil.core.cli", "core", "inspect", str(tmp_path / "missing.safetensors")]
    proc = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("miil core inspect: error: ")
    assert "missing.safetensors" in proc.stderr
    proc = subprocess.run([*run, "--debug"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback (most recent call last)" in proc.stderr


def test_metrics_file_with_a_broken_line_is_a_user_error(tmp_path, capsys):
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"epoch": 0, "train_loss": 1.0}) + "\n{not json\n")
    assert main(["plot", str(tmp_path)]) == 2
    assert "line 2 is not JSON" in _one_line(capsys)


def test_a_skipped_input_and_other_warnings_in_a_process():
    """The bad-input contract: a command prints each skipped input as one line naming the file and the reason (not
    Python's two-line warning with the source location); other warnings keep their usual form."""
    code = (
        "import warnings\n"
        "from miil.core.cli import run_command\n"
        "from miil.core.data.unreadable import UnreadableFileWarning\n"
        "def command(args):\n"
        "    warnings.warn('skipping unreadable file clip.wav: empty file', UnreadableFileWarning)\n"
        "    warnings.warn('something else', UserWarning)\n"
        "    return 3\n"
        "raise SystemExit(run_command(command, None, 'miil demo-pkg validate'))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == "miil demo-pkg validate: warning: skipping unreadable file clip.wav: empty file"
    assert any("UserWarning: something else" in line for line in lines[1:])


def test_printed_warnings_shows_the_one_line_inside_pytest(capsys):
    """miil.core.testing.printed_warnings: a test sees the skipped-input line a user reads (once per input)."""
    import warnings

    from miil.core.cli import run_command
    from miil.core.data import UnreadableFileWarning
    from miil.core.testing import printed_warnings

    def command(args):
        for _ in range(2):  # the same input read twice (a train and a validation pass) is reported once
            warnings.warn("skipping unreadable file x.jpg: missing", UnreadableFileWarning, stacklevel=1)
        return EXIT_SKIPPED_INPUTS

    with printed_warnings():
        assert run_command(command, None, "miil pkg validate") == EXIT_SKIPPED_INPUTS
    assert capsys.readouterr().err == "miil pkg validate: warning: skipping unreadable file x.jpg: missing\n"
