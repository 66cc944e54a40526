"""Safe checkpoint I/O: loading without executing pickled code, atomic writes, and strict state-dict remapping.

Checkpoints published with the Alibaba-MIIL papers (ASL, ML-Decoder, TResNet, ImageNet-21K pretraining, ...) are
pickled ``torch.save`` files, often nested (``{"model": ..., "state_dict": ...}``) and saved from DDP models
(``module.`` prefixes). ``load_checkpoint`` reads them with ``torch.load(weights_only=True)`` (or safetensors),
so a file carrying arbitrary Python objects is refused instead of executed. ``remap_state_dict`` is the helper the
weight converters use: every source key must be mapped or deliberately dropped, and every expected key produced,
so a conversion cannot silently lose weights. Writes go through a temporary file and ``os.replace`` so an
interrupted save never leaves a half-written file in place.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import UserError

__all__ = [
    "KeyMappingError",
    "UnreadableCheckpointError",
    "UnsafeCheckpointError",
    "load_file",
    "restricted_unpickle",
    "atomic_torch_save",
    "atomic_write_bytes",
    "atomic_write_text",
    "extract_state_dict",
    "fill_missing_bn_counters",
    "load_checkpoint",
    "load_into",
    "remap_state_dict",
    "resolve_weights",
    "save_safetensors",
]

_CONTAINER_KEYS = ("model", "state_dict", "model_state", "module")
_SHOW = 20


class UnsafeCheckpointError(UserError, RuntimeError):
    """A checkpoint could not be loaded without unpickling arbitrary Python objects."""


class UnreadableCheckpointError(UserError, RuntimeError):
    """A weights file is corrupt, cut short, or not in a format we read."""


class KeyMappingError(KeyError):
    """State-dict keys do not line up: unmapped, missing, unexpected or colliding keys, or shape mismatches.

    The lists are available as attributes (``unmapped``, ``missing``, ``unexpected``, ``collisions``,
    ``shape_mismatches``) and are all spelled out in the message.

    Args:
        message: First line of the message.
        unmapped: Source keys that matched no rule and no drop pattern.
        missing: Expected keys that were not produced.
        unexpected: Produced keys that were not expected.
        collisions: Target key -> the source keys that were all mapped to it.
        shape_mismatches: ``(key, got_shape, expected_shape)`` triples.
    """

    def __init__(
        self,
        message: str,
        *,
        unmapped: Sequence[str] = (),
        missing: Sequence[str] = (),
        unexpected: Sequence[str] = (),
        collisions: Mapping[str, Sequence[str]] | None = None,
        shape_mismatches: Sequence[tuple[str, tuple[int, ...], tuple[int, ...]]] = (),
    ):
        self.unmapped = list(unmapped)
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.collisions = {k: list(v) for k, v in (collisions or {}).items()}
        self.shape_mismatches = list(shape_mismatches)
        sections = [
            ("unmapped source keys (matched no rule and no drop pattern)", self.unmapped),
            ("missing keys (expected but not produced)", self.missing),
            ("unexpected keys (produced but not expected)", self.unexpected),
            (
                "collisions (several source keys mapped to one target)",
                [f"{t} <- {', '.join(s)}" for t, s in self.collisions.items()],
            ),
            (
                "shape mismatches",
                [f"{k}: got {list(g)}, expected {list(e)}" for k, g, e in self.shape_mismatches],
            ),
        ]
        lines = [message]
        for title, items in sections:
            if not items:
                continue
            lines.append(f"  {len(items)} {title}:")
            lines += [f"    {item}" for item in items[:_SHOW]]
            if len(items) > _SHOW:
                lines.append(f"    ... and {len(items) - _SHOW} more")
        super().__init__("\n".join(lines))

    def __str__(self) -> str:
        # KeyError would repr() the message (quotes, escaped newlines); show it as written.
        return str(self.args[0]) if self.args else ""


# --------------------------------------------------------------------------------------------------- loading


def _weights_only_refusal(err: BaseException) -> bool:
    text = str(err)
    return "weights_only" in text or "Weights only" in text or "WeightsUnpickler" in text


def load_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device | None = "cpu") -> dict:
    """Load a checkpoint without running pickled code.

    ``.safetensors`` files are read with safetensors; anything else with ``torch.load(weights_only=True)``, which
    accepts tensors, plain containers and numbers but refuses other Python objects.

    Args:
        path: Checkpoint file.
        map_location: Device to load tensors onto (for safetensors, a device string or ``torch.device``).

    Returns:
        Whatever the file holds: a state dict, or a dict that contains one (see ``extract_state_dict``).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint file {path} does not exist")
    if not path.is_file():
        raise IsADirectoryError(f"checkpoint path {path} is not a file")
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        if map_location is not None and not isinstance(map_location, str | torch.device):
            raise TypeError(
                f"map_location for a .safetensors file must be a device string or torch.device, got {map_location!r}"
            )
        try:
            return load_file(path, device=str(map_location or "cpu"))
        except Exception as err:
            raise UnreadableCheckpointError(f"cannot read safetensors file {path}: {err}") from err
    try:
        # The original training scripts (USI, HardCoRe-NAS, DINO) store their argparse.Namespace beside the weights;
        # rebuilding one only fills its __dict__ with values the weights-only loader already admits, so it is allowed.
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError) as err:
        if not _weights_only_refusal(err):
            raise UnreadableCheckpointError(f"cannot read checkpoint {path}: {err}") from err
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found:
            what = f"holds arbitrary Python objects (it refers to {found.group(1)})"
        else:
            what = "is not a plain tensor checkpoint (it is corrupt, not a PyTorch file, or pickled with features"
            what += " the safe loader refuses)"
        raise UnsafeCheckpointError(
            f"checkpoint {path} {what}; it will not be unpickled, because unpickling can run arbitrary code. "
            "If you trust the file, convert it to safetensors in a trusted, isolated environment (load it there "
            "with torch.load(..., weights_only=False) and save its state dict with miil.core.io.save_safetensors), "
            "then load the .safetensors file."
        ) from None
    except (EOFError, ValueError, OSError) as err:
        detail = str(err) or "unexpected end of data (the file is empty or cut short)"
        raise UnreadableCheckpointError(f"cannot read checkpoint {path}: {type(err).__name__}: {detail}") from err


_PLAIN_TYPES = (dict, list, tuple, str, bytes, int, float, bool, type(None))


class _PlainUnpickler(pickle.Unpickler):
    """Builds only the containers and scalars of pickle's own opcodes; refuses every global (class, function)."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refers to {module}.{name}")


def restricted_unpickle(path: str | os.PathLike, *, what: str = "pickle file") -> Any:
    """Read a pickle that may come from anyone: only dict, list, tuple, str, bytes, int, float, bool and None.

    Pickles such as the original HardCoRe-NAS latency table (``{descriptor: seconds}``) hold nothing else; a file that
    names any class or function (the way a malicious pickle runs code) is refused before anything is built.

    Args:
        path: The file.
        what: How error messages name the file ("latency table", ...).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist or is not a file")
    try:
        with open(path, "rb") as fh:
            obj = _PlainUnpickler(fh).load()
    except pickle.UnpicklingError as err:
        raise UserError(
            f"{what} {path} {err} and will not be unpickled (only dicts, lists, strings and numbers are accepted)"
        ) from None
    except (EOFError, ValueError, IndexError, KeyError, TypeError) as err:
        raise UserError(f"{what} {path} is not a readable pickle ({type(err).__name__}: {err})") from None
    return obj


_TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".tar", ".ckpt", ".pth.tar")
_PICKLE_SUFFIXES = (".pkl", ".pickle")


def load_file(path: str | os.PathLike, *, what: str = "file") -> Any:
    """Open a file a user hands to a ``miil`` command (weights, latency table, tree, word vectors), running no code.

    Every command that reads such a file goes through here. By suffix: ``.safetensors`` with safetensors; torch files
    (``.pt``, ``.pth``, ``.bin``, ``.tar``, ``.ckpt``) with ``torch.load(weights_only=True)``; pickles (``.pkl``,
    ``.pickle``) with :func:`restricted_unpickle` (plain containers and numbers only); ``.json`` as JSON; ``.npy`` /
    ``.npz`` with ``allow_pickle=False``; ``.txt`` / ``.csv`` as text. A file that would need arbitrary objects is
    refused with a :class:`UserError`, and nothing in it is executed.

    Args:
        path: The file.
        what: How messages name it ("checkpoint", "latency table", "word vectors", "class tree", ...).
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} {path} does not exist")
    if not path.is_file():
        raise UserError(f"{what} {path} is a folder, not a file")
    name = path.name.lower()
    try:
        if name.endswith(".safetensors") or name.endswith(_TORCH_SUFFIXES):
            return load_checkpoint(path)
        if name.endswith(_PICKLE_SUFFIXES):
            return restricted_unpickle(path, what=what)
        if name.endswith(".json"):
            import json

            return json.loads(path.read_text(encoding="utf-8"))
        if name.endswith((".npy", ".npz")):
            import numpy as np

            return np.load(path, allow_pickle=False)
        if name.endswith((".txt", ".csv", ".tsv")):
            return path.read_text(encoding="utf-8")
    except UserError:
        raise
    except (ValueError, OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read {what} {path}: {type(err).__name__}: {err}") from None
    raise UserError(
        f"{what} {path}: unknown file type {path.suffix!r}; expected .safetensors, .pt/.pth, .pkl, .json, .npy or .txt"
    )


def _is_tensor_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _find_state_dict(obj: Mapping, depth: int = 0) -> Mapping | None:
    for key in _CONTAINER_KEYS:
        inner = obj.get(key)
        if _is_tensor_dict(inner):
            return inner
        if isinstance(inner, Mapping) and depth < 2:
            found = _find_state_dict(inner, depth + 1)
            if found is not None:
                return found
    return obj if _is_tensor_dict(obj) else None


def extract_state_dict(obj: Any, key: str | None = None) -> dict[str, torch.Tensor]:
    """Find the tensor state dict inside a loaded checkpoint.

    Without ``key``, looks under "model", "state_dict", "model_state" and "module" in that order (also one or two
    levels down), then at the checkpoint itself. A ``module.`` prefix carried by every key (DDP) is removed.

    Args:
        obj: A loaded checkpoint.
        key: Top-level key that holds the state dict, to skip the search.
    """
    if not isinstance(obj, Mapping):
        raise ValueError(f"checkpoint is a {type(obj).__name__}, not a dict; no state dict can be taken from it")
    if key is not None:
        if key not in obj:
            raise KeyError(f"checkpoint has no key {key!r}; available keys: {sorted(map(str, obj))}")
        found = obj[key]
        if not _is_tensor_dict(found):
            raise ValueError(f"checkpoint[{key!r}] is not a dict of tensors (got {type(found).__name__})")
    else:
        found = _find_state_dict(obj)
        if found is None:
            raise ValueError(
                f"no state dict (a dict of tensors) found in the checkpoint; top-level keys: "
                f"{sorted(map(str, obj))[:_SHOW]}. Pass key=... to name the entry that holds the weights"
            )
    if all(k.startswith("module.") for k in found):
        return {k[len("module.") :]: v for k, v in found.items()}
    return dict(found)


# --------------------------------------------------------------------------------------------------- writing


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextmanager
def _atomic_target(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary path next to ``path``; on success fsync it and move it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # O_EXCL with mode 0o666 gives the usual umask-derived permissions (mkstemp would give 0o600).
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to a file atomically (temporary file, fsync, ``os.replace``), creating parent folders.

    Args:
        path: Destination file.
        data: Contents.
    """
    with _atomic_target(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> None:
    """Write text to a file atomically, creating parent folders.

    Args:
        path: Destination file.
        text: Contents.
        encoding: Text encoding.
    """
    atomic_write_bytes(path, text.encode(encoding))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file, then move it into place; creates parent folders.

    Args:
        obj: What to save.
        path: Destination file.
    """
    with _atomic_target(path) as tmp:
        torch.save(obj, tmp)


def save_safetensors(
    state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike, *, metadata: Mapping[str, str] | None = None
) -> None:
    """Save a state dict as safetensors, atomically; tied or sliced tensors are copied so safetensors accepts them.

    Args:
        state_dict: Tensor name -> tensor.
        path: Destination file.
        metadata: String key/value pairs stored in the file header.
    """
    from safetensors.torch import save_file

    if metadata is not None:
        bad = {k: v for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)}
        if bad:
            raise TypeError(f"safetensors metadata must map str to str; offending entries: {bad!r}")
        metadata = dict(metadata)
    tensors: dict[str, torch.Tensor] = {}
    seen_storage: set[tuple[str, int]] = set()
    for name, t in state_dict.items():
        if not isinstance(name, str) or not isinstance(t, torch.Tensor):
            raise TypeError(f"save_safetensors takes a dict of str -> Tensor; entry {name!r} is a {type(t).__name__}")
        t = t.detach()
        storage = t.untyped_storage()
        ident = (str(t.device), storage.data_ptr())
        owns_storage = (
            t.is_contiguous() and t.storage_offset() == 0 and storage.nbytes() == t.numel() * t.element_size()
        )
        if not owns_storage or (ident in seen_storage and t.numel() > 0):
            t = t.clone(memory_format=torch.contiguous_format)
        else:
            seen_storage.add(ident)
        tensors[name] = t
    with _atomic_target(path) as tmp:
        save_file(tensors, tmp, metadata=metadata)


# --------------------------------------------------------------------------------------------------- remapping


def _compile_rules(
    rules: Sequence[tuple[str, str]] | Mapping[str, str] | Callable[[str], str | None],
) -> Callable[[str], str | None]:
    if callable(rules):
        return rules
    if isinstance(rules, str):
        raise TypeError(f"rules must be (regex, replacement) pairs or a callable, got the string {rules!r}")
    pairs = list(rules.items()) if isinstance(rules, Mapping) else list(rules)
    compiled = []
    for rule in pairs:
        if not (isinstance(rule, tuple | list) and len(rule) == 2 and all(isinstance(r, str) for r in rule)):
            raise TypeError(f"each remapping rule must be a (regex, replacement) pair of strings, got {rule!r}")
        try:
            compiled.append((re.compile(rule[0]), rule[1]))
        except re.error as err:
            raise ValueError(f"invalid regex {rule[0]!r} in remapping rules: {err}") from None

    def apply(name: str) -> str | None:
        for pattern, replacement in compiled:
            m = pattern.fullmatch(name)
            if m is not None:
                try:
                    return m.expand(replacement)
                except (re.error, IndexError) as err:
                    raise ValueError(
                        f"replacement {replacement!r} of rule {pattern.pattern!r} fails on key {name!r}: {err}"
                    ) from None
        return None

    return apply


def _expected_keys(expected: Any) -> tuple[list[str], dict[str, tuple[int, ...]]]:
    if isinstance(expected, nn.Module):
        expected = expected.state_dict()
    if isinstance(expected, Mapping):
        shapes = {}
        for k, v in expected.items():
            if isinstance(v, torch.Tensor):
                shapes[k] = tuple(v.shape)
            elif isinstance(v, torch.Size | tuple | list):
                shapes[k] = tuple(int(d) for d in v)
            elif v is not None:
                raise TypeError(f"expected[{k!r}] must be a tensor, a shape or None, got {type(v).__name__}")
        return list(expected), shapes
    if isinstance(expected, str) or not isinstance(expected, Iterable):
        raise TypeError(f"expected must be a state dict, a dict of shapes or a list of key names, got {expected!r}")
    return [str(k) for k in expected], {}


def remap_state_dict(
    source: Mapping[str, torch.Tensor],
    rules: Sequence[tuple[str, str]] | Mapping[str, str] | Callable[[str], str | None],
    *,
    expected: Mapping[str, Any] | Sequence[str] | nn.Module | None = None,
    drop: Sequence[str] = (),
    shapes: bool = True,
) -> dict[str, torch.Tensor]:
    """Rename the keys of a state dict, strictly: every source key must be mapped or dropped on purpose.

    Rules are ``(regex, replacement)`` pairs tried in order with ``re.fullmatch``; the first that matches renames
    the key (``\\1``-style groups allowed). Identity: ``[(r"(.*)", r"\\1")]``. A callable ``name -> new name``
    may be given instead, returning ``None`` for keys it does not map. Source keys that fully match a ``drop``
    pattern are discarded before the rules are tried.

    All problems are collected and raised together as ``KeyMappingError``: unmapped source keys, two source keys
    mapped to the same target, and, with ``expected``, missing and unexpected keys and shape mismatches.

    Args:
        source: The state dict to convert.
        rules: Renaming rules, or a callable.
        expected: The target model's state dict, a dict of key -> shape, a list of key names, or the model.
        drop: Regexes (full match) of source keys to discard deliberately.
        shapes: Compare tensor shapes with ``expected`` when it carries shapes.

    Returns:
        The renamed state dict (same tensor objects), in source order.
    """
    rename = _compile_rules(rules)
    try:
        drops = [re.compile(d) for d in drop]
    except re.error as err:
        raise ValueError(f"invalid regex in drop patterns {list(drop)!r}: {err}") from None
    out: dict[str, torch.Tensor] = {}
    origin: dict[str, list[str]] = {}
    unmapped = []
    for name, value in source.items():
        if any(d.fullmatch(name) for d in drops):
            continue
        target = rename(name)
        if target is None:
            unmapped.append(name)
            continue
        if not isinstance(target, str):
            raise TypeError(f"remapping rule returned {target!r} for key {name!r}; it must return a str or None")
        origin.setdefault(target, []).append(name)
        out.setdefault(target, value)
    collisions = {t: srcs for t, srcs in origin.items() if len(srcs) > 1}
    missing: list[str] = []
    unexpected: list[str] = []
    mismatches = []
    if expected is not None:
        names, expected_shapes = _expected_keys(expected)
        name_set = set(names)
        missing = [k for k in names if k not in out]
        unexpected = [k for k in out if k not in name_set]
        if shapes:
            for k, v in out.items():
                want = expected_shapes.get(k)
                if want is not None and isinstance(v, torch.Tensor) and tuple(v.shape) != want:
                    mismatches.append((f"{k} (from {origin[k][0]})", tuple(v.shape), want))
    if unmapped or collisions or missing or unexpected or mismatches:
        raise KeyMappingError(
            f"state dict remapping failed ({len(source)} source keys, {len(out)} produced):",
            unmapped=unmapped,
            missing=missing,
            unexpected=unexpected,
            collisions=collisions,
            shape_mismatches=mismatches,
        )
    return out


def fill_missing_bn_counters(
    state: Mapping[str, torch.Tensor], expected_keys: Iterable[str] | nn.Module | Mapping[str, Any] | None = None
) -> dict[str, torch.Tensor]:
    """Add the BatchNorm ``num_batches_tracked`` counters that a checkpoint lacks, as 0.

    Checkpoints of old PyTorch versions and of InplaceABN before 1.1 (which the original TResNet, ML-Decoder, CSL and
    HardCoRe-NAS code pin) keep no counter. A counter changes no output (it only matters for ``momentum=None``
    cumulative averaging, which no timm model uses), so converters take a missing one as 0 instead of dropping
    strictness for the whole state dict. Only counters of norm layers whose ``running_mean`` the checkpoint holds are
    added; every other missing key is still reported by :func:`remap_state_dict` / :func:`load_into`.

    Args:
        state: The checkpoint's state dict (not modified).
        expected_keys: The target's keys (a list, a state dict or the module): a counter is added for each expected
            ``<layer>.num_batches_tracked`` that ``state`` lacks. ``None``: one for every ``<layer>.running_mean``.

    Returns:
        A new dict: ``state`` plus the added counters (0-d ``torch.long`` zeros).
    """
    if isinstance(expected_keys, nn.Module):
        expected_keys = expected_keys.state_dict()
    out = dict(state)
    if expected_keys is None:
        candidates = [k[: -len("running_mean")] + "num_batches_tracked" for k in state if k.endswith("running_mean")]
    else:
        candidates = [k for k in expected_keys if k.endswith("num_batches_tracked")]
    for key in candidates:
        layer = key[: -len("num_batches_tracked")]
        if key not in out and layer + "running_mean" in out:
            out[key] = torch.zeros((), dtype=torch.long)
    return out


def resolve_weights(path: str | os.PathLike) -> tuple[Path, dict[str, Any] | None]:
    """The weights file and its JSON sidecar named by a ``--weights`` argument (a run folder or a weights file).

    A run folder means its ``best.safetensors`` (sidecar ``best.json``). A file's sidecar is the ``.json`` of the same
    name beside it (``best.json``, ``last.json``'s weights, a converter's ``model.json``); a checkpoint inside a run's
    ``checkpoints/`` folder takes the run's ``last.json`` when that names it. Nothing is loaded here but the sidecar.

    Args:
        path: What the user passed.

    Returns:
        ``(weights file, sidecar dict or None)``.

    Raises:
        UserError: The path does not exist, the folder holds no ``best.safetensors``, or the sidecar is not JSON.
    """
    import json

    path = Path(path)
    if path.is_dir():
        weights = path / "best.safetensors"
        if not weights.is_file():
            raise UserError(
                f"--weights {path} is a folder without best.safetensors: name a run folder written by a train verb "
                "(after its first epoch) or a weights file"
            )
    elif path.is_file():
        weights = path
    else:
        raise UserError(f"--weights {path} does not exist: name a run folder or a weights file")
    candidates = [weights.with_suffix(".json")]
    if weights.parent.name == "checkpoints":
        candidates.append(weights.parent.parent / "last.json")
    for sidecar in candidates:
        if not sidecar.is_file() or sidecar == weights:
            continue
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise UserError(f"the sidecar {sidecar} of {weights} is not valid JSON ({err})") from None
        if sidecar.name == "last.json" and Path(str(meta.get("weights", ""))).name != weights.name:
            continue
        return weights, meta if isinstance(meta, dict) else None
    return weights, None


def load_into(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """``model.load_state_dict(state_dict, strict=True)`` with a readable error listing what does not match.

    Args:
        model: The module to load into.
        state_dict: The weights.
    """
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:
        own = model.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatches = [
            (k, tuple(v.shape), tuple(own[k].shape))
            for k, v in state_dict.items()
            if k in own and isinstance(v, torch.Tensor) and tuple(v.shape) != tuple(own[k].shape)
        ]
        if not (missing or unexpected or mismatches):
            raise
        raise KeyMappingError(
            f"cannot load the state dict into {type(model).__name__}:",
            missing=missing,
            unexpected=unexpected,
            shape_mismatches=mismatches,
        ) from err
