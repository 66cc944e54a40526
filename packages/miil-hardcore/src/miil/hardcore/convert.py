"""Strict converters for the checkpoints of the original HardCoRe-NAS code (github Alibaba-MIIL/HardCoReNAS).

Paper: HardCoRe-NAS (arXiv 2102.11646), sections 3.2 and 3.5. The original code is a 2020 timm fork; its checkpoints
are plain state dicts (the published ``.pth`` files) or timm training outputs (``state_dict`` / ``state_dict_ema``
entries, ``module.`` prefixes, and ``module1.`` / ``module2.`` for the teacher / student of its multipath
distillation wrapper). Three layouts exist:

- **one-shot supernet** (``MobileNasNet``; ``w_star_076b2ed3.pth`` and search outputs): a timm ``MobileNetV3``
  whose searched blocks are ``blocks.<stage + 1>.<block>`` elastic blocks holding ``conv_pw``, ``bn1``,
  ``conv_dw.<kernel index>``, ``bn2.<kernel index>``, ``se.1.conv_reduce`` / ``se.1.conv_expand`` (``se.0`` is the
  no-SE identity), ``conv_pwl``, ``bn3.<expansion index * 2 + se index>`` and the option logits ``_alpha`` [12];
  the stage depth logits are ``beta.<stage>`` [3] (depths 2, 3, 4).
- **heaviest network** (``w_heaviest_d89ee05d.pth``): a plain timm ``MobileNetV3`` of the heaviest path.
- **child networks** (the README's Red / Green / Blue / KD models; timm's ``hardcorenas_*`` weights are the Green
  ones): plain timm ``MobileNetV3`` state dicts, whose key names are those of today's timm.

The supernets differ from ours in one place: the original shares ONE squeeze-excite per block between the
expansion ratios and masks its channels (expansion ``e`` uses ``conv_reduce.weight[:rd_e, :mid_e]`` and
``conv_expand.weight[:mid_e, :rd_e]``, ``rd_e = make_divisible(mid_e / 4)``), while
:class:`~miil.hardcore.elastic_block.ElasticInvertedResidual` holds one SE per expansion. The original's SE becomes
our largest-expansion SE and the smaller ones are its slices, which computes exactly what the original computes;
the reverse direction does not exist. The other masks (expansion channels after the shared ``conv_pw``/``bn1``,
projection input) are the channel slices our block takes. ``_alpha`` / ``beta`` are architecture variables, not
weights: they are returned beside the state dict.

Every conversion goes through :func:`miil.core.io.remap_state_dict` with the target's key shapes: every source key is
mapped or deliberately set aside (``_alpha``, ``beta``), every target key is produced, and a missing, extra or
mis-shaped key raises :class:`~miil.core.io.KeyMappingError` naming it. Only embedding the heaviest network into a
supernet leaves weights the source does not hold at their initialisation (the other kernels' depthwise convs), as the
original's own initialisation of the multipath stage does; they are listed in the result.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timm.layers import make_divisible

from miil.core.io import (
    KeyMappingError,
    atomic_write_text,
    extract_state_dict,
    fill_missing_bn_counters,
    load_checkpoint,
    load_into,
    remap_state_dict,
    save_safetensors,
)

from .builder import build_child, resolve_architecture
from .extract import child_state_dict
from .search_space import Architecture, BlockChoice, SearchSpace
from .supernet import HardCoReSupernet

__all__ = [
    "ConvertedSupernet",
    "convert_original_checkpoint",
    "convert_original_child",
    "convert_original_supernet",
    "detect_original_layout",
    "infer_child_architecture",
    "original_state_dict",
    "supernet_from_heaviest",
]

_PARTS = {"student": "module2.", "teacher": "module1."}
_SUPERNET_KEY = re.compile(r"(.*\._alpha|beta\.\d+|blocks\.\d+\.\d+\.(conv_dw|bn2|bn3)\.\d+\..*)")
_ALPHA = re.compile(r"blocks\.(\d+)\.(\d+)\._alpha")
_BETA = re.compile(r"beta\.(\d+)")
_BLOCK = re.compile(r"blocks\.(\d+)\.(\d+)\.(.+)")
_ELASTIC = re.compile(r"conv_pw\.weight|conv_pwl\.weight|conv_dw\.\d+\.weight|bn1\.\w+|bn[23]\.\d+\.\w+")
_FRAME = ("conv_stem.", "bn1.", "conv_head.", "classifier.")
# the original's elastic SE list is [Identity, SqueezeExcite] (se_ratio [0, 0.25]); the SE weights sit at index 1
_SOURCE_SE = "1"


@dataclass
class ConvertedSupernet:
    """A converted one-shot model.

    Args:
        state_dict: Weights of :class:`HardCoReSupernet` (loads strictly).
        num_classes: Classifier outputs.
        alpha: ``[stages, max depth, options]`` option logits of the source, if it held them.
        beta: ``[stages, depths]`` depth logits of the source, if it held them.
        initialised: Target keys the source does not hold, left at their initialisation.
    """

    state_dict: dict[str, torch.Tensor]
    num_classes: int
    alpha: np.ndarray | None = None
    beta: np.ndarray | None = None
    initialised: list[str] = field(default_factory=list)

    def architecture(self, space: SearchSpace) -> Architecture | None:
        """The argmax architecture of ``alpha`` / ``beta``, or ``None`` when absent or tied (e.g. uniform)."""
        if self.alpha is None or self.beta is None:
            return None
        for row in (*self.alpha.reshape(-1, self.alpha.shape[-1]), *self.beta):
            if np.sum(row == np.max(row)) != 1:
                return None
        return space.from_alpha_beta(self.alpha, self.beta)


# ---------------------------------------------------------------------------------------------------- unwrapping
def original_state_dict(
    checkpoint: Mapping[str, Any], *, use_ema: bool = False, part: str | None = None
) -> dict[str, torch.Tensor]:
    """The tensor state dict inside a loaded original checkpoint.

    Args:
        checkpoint: What :func:`miil.core.io.load_checkpoint` returned for the file.
        use_ema: Take the ``state_dict_ema`` entry of a training output instead of ``state_dict``.
        part: For an output of the multipath stage (keys ``module1.`` = heaviest teacher, ``module2.`` = supernet):
            ``"student"`` (default) or ``"teacher"``; the other part is left out on purpose.
    """
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"checkpoint is a {type(checkpoint).__name__}, not a dict")
    if use_ema:
        if "state_dict_ema" not in checkpoint:
            raise KeyError(f"use_ema: the checkpoint has no 'state_dict_ema'; its keys: {sorted(map(str, checkpoint))}")
        sd = extract_state_dict(checkpoint, key="state_dict_ema")
    else:
        sd = extract_state_dict(checkpoint)
    sd = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in sd.items()}
    wrapped = any(k.startswith(tuple(_PARTS.values())) for k in sd)
    if part is not None and part not in _PARTS:
        raise ValueError(f"part must be one of {sorted(_PARTS)}, got {part!r}")
    if not wrapped:
        if part is not None:
            raise ValueError(f"part={part!r} given, but the checkpoint has no module1./module2. (teacher/student) keys")
        return sd
    prefix = _PARTS[part or "student"]
    stray = [k for k in sd if not k.startswith(tuple(_PARTS.values()))]
    if stray:
        raise ValueError(f"checkpoint mixes teacher/student keys with other keys, e.g. {stray[:5]}")
    return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}


def detect_original_layout(state_dict: Mapping[str, torch.Tensor]) -> str:
    """``"supernet"`` (elastic blocks, ``_alpha``/``beta``) or ``"child"`` (a plain ``MobileNetV3``)."""
    if any(_SUPERNET_KEY.fullmatch(k) for k in state_dict):
        return "supernet"
    if any(k.startswith("blocks.") for k in state_dict):
        return "child"
    raise ValueError(
        f"not a HardCoRe-NAS / MobileNetV3 state dict (no 'blocks.' keys); first keys: {list(state_dict)[:8]}"
    )


def _num_classes(sd: Mapping[str, torch.Tensor]) -> int:
    if "classifier.weight" not in sd:
        raise KeyError("the state dict has no classifier.weight; cannot tell the number of classes")
    return int(sd["classifier.weight"].shape[0])


# ---------------------------------------------------------------------------------------------------- children
def infer_child_architecture(state_dict: Mapping[str, torch.Tensor], space: SearchSpace) -> Architecture:
    """The architecture of an original ``MobileNetV3`` child, read from its weight shapes.

    The expansion comes from ``conv_pw`` (``make_divisible(in * e)`` output channels), the kernel from ``conv_dw``,
    SE from the presence of ``se.conv_reduce``, the depth from the number of blocks.

    Raises:
        ValueError: naming the block whose shapes match no option of ``space``.
    """
    blocks = []
    for s in range(space.num_stages):
        options = []
        j = 0
        while f"blocks.{s + 1}.{j}.conv_pw.weight" in state_dict:
            pre = f"blocks.{s + 1}.{j}"
            mid, cin = state_dict[f"{pre}.conv_pw.weight"].shape[:2]
            if f"{pre}.conv_dw.weight" not in state_dict:
                raise ValueError(f"{pre} has conv_pw but no conv_dw.weight: not an inverted-residual block")
            kernel = int(state_dict[f"{pre}.conv_dw.weight"].shape[-1])
            expansions = [e for e in space.expansions if make_divisible(cin * e) == mid]
            if len(expansions) != 1:
                raise ValueError(
                    f"{pre}.conv_pw.weight maps {cin} -> {mid} channels, which matches "
                    f"{'no' if not expansions else 'more than one'} expansion of {space.expansions}"
                )
            choice = BlockChoice(expansions[0], kernel, f"{pre}.se.conv_reduce.weight" in state_dict)
            if choice not in space.options:
                raise ValueError(f"{pre} is {choice}, which is not an option of the search space")
            options.append(space.option_index(choice))
            j += 1
        blocks.append(tuple(options))
    extra = [k for k in state_dict if k.startswith(f"blocks.{space.num_stages + 2}.")]
    if extra or f"blocks.{space.num_stages + 1}.0.conv.weight" not in state_dict:
        raise ValueError(
            f"the state dict does not have the space's {space.num_stages} searched stages between the fixed first and "
            f"head blocks (blocks.0 ... blocks.{space.num_stages + 1}); check --space"
        )
    try:
        return space.validate(Architecture(tuple(blocks)))
    except ValueError as err:
        raise ValueError(f"the child's blocks do not form an architecture of the space: {err}") from None


def convert_original_child(
    state_dict: Mapping[str, torch.Tensor], space: SearchSpace, *, arch: Architecture | str | list | None = None
) -> tuple[dict[str, torch.Tensor], Architecture]:
    """An original child (or the heaviest network) as the state dict of :func:`build_child`'s timm ``MobileNetV3``.

    Args:
        state_dict: The original ``MobileNetV3`` state dict (see :func:`original_state_dict`).
        space: The search space the child belongs to.
        arch: The child's architecture (a published name, ``arch_def`` or :class:`Architecture`); default: read
            from the weight shapes.

    Returns:
        ``(state_dict, architecture)``; the state dict loads strictly into ``build_child(space, architecture)``.
    """
    arch = infer_child_architecture(state_dict, space) if arch is None else resolve_architecture(space, arch)
    target = build_child(space, arch, num_classes=_num_classes(state_dict))
    converted = remap_state_dict(fill_missing_bn_counters(state_dict), [(r"(.*)", r"\1")], expected=target)
    return converted, arch


# ---------------------------------------------------------------------------------------------------- supernets
def _supernet_rename(space: SearchSpace):
    last_se = len(space.expansions) - 1

    def rename(key: str) -> str | None:
        if key.startswith(_FRAME):
            return key
        m = _BLOCK.fullmatch(key)
        if m is None:
            return None
        b, j, rest = int(m[1]), m[2], m[3]
        if b == 0 and j == "0":
            return f"stem_block.{rest}"
        if b == space.num_stages + 1 and j == "0":
            return f"head_block.{rest}"
        if not 1 <= b <= space.num_stages:
            return None
        if rest.startswith("se."):
            se = re.fullmatch(r"se\.(\d+)\.(conv_reduce|conv_expand)\.(weight|bias)", rest)
            if se is None or se[1] != _SOURCE_SE:
                return None
            return f"stages.{b - 1}.{j}.se.{last_se}.{se[2]}.{se[3]}"
        return f"stages.{b - 1}.{j}.{rest}" if _ELASTIC.fullmatch(rest) else None

    return rename


def _check_supernet_variant(sd: Mapping[str, torch.Tensor], space: SearchSpace) -> None:
    if space.se_options != (False, True):
        raise ValueError(
            f"the original supernet always has the options SE off/on (se_ratio [0, 0.25]); the space has "
            f"se_options {space.se_options}"
        )
    dedicated = sorted(k for k in sd if re.fullmatch(r"blocks\.\d+\.\d+\.conv_pwl\.\d+\.weight", k))
    if dedicated:
        raise ValueError(
            f"{dedicated[0]}: this supernet was trained with --use_dedicated_pwl_se (one projection per SE choice); "
            "our elastic block shares one projection, so it cannot be converted"
        )
    n_bn3 = len(space.expansions) * len(space.se_options)
    found: dict[str, set[str]] = {}
    for key in sd:
        m = re.fullmatch(r"(blocks\.\d+\.\d+)\.bn3\.(\d+)\.weight", key)
        if m:
            found.setdefault(m[1], set()).add(m[2])
    wrong = {block: len(idx) for block, idx in found.items() if len(idx) != n_bn3}
    if wrong:
        block, count = next(iter(wrong.items()))
        raise ValueError(
            f"{block} has {count} output BN(s) where the space needs {n_bn3} (expansions {space.expansions} x SE "
            "off/on): trained with --no_privatized_bn, or with the extended expansions (--reduced_exp_ratio False); "
            "use a space with the same expansions"
        )


def _architecture_variables(sd: Mapping[str, torch.Tensor], space: SearchSpace):
    alpha_keys = {k: _ALPHA.fullmatch(k) for k in sd if _ALPHA.fullmatch(k)}
    beta_keys = {k: _BETA.fullmatch(k) for k in sd if _BETA.fullmatch(k)}
    if not alpha_keys and not beta_keys:
        return None, None
    if space.depths != tuple(range(2, space.max_depth + 1)):
        raise ValueError(
            f"the original's depth variables choose depths 2..{space.max_depth} (the first block is always kept); "
            f"the space's depths are {space.depths}"
        )
    alpha = np.zeros(space.alpha_shape)
    beta = np.zeros(space.beta_shape)
    want_a = {f"blocks.{s + 1}.{j}._alpha" for s in range(space.num_stages) for j in range(space.max_depth)}
    want_b = {f"beta.{s}" for s in range(space.num_stages)}
    if set(alpha_keys) != want_a or set(beta_keys) != want_b:
        problems = sorted((want_a | want_b) - set(alpha_keys) - set(beta_keys))
        problems += sorted((set(alpha_keys) | set(beta_keys)) - want_a - want_b)
        raise ValueError(f"architecture variables do not match the space: missing or unexpected {problems[:10]}")
    for key, m in alpha_keys.items():
        value = sd[key].detach().float().reshape(-1).cpu().numpy()
        if value.shape != (space.num_options,):
            raise ValueError(f"{key} has {value.size} entries; the space has {space.num_options} options")
        alpha[int(m[1]) - 1, int(m[2])] = value
    for key, m in beta_keys.items():
        value = sd[key].detach().float().reshape(-1).cpu().numpy()
        if value.shape != (len(space.depths),):
            raise ValueError(f"{key} has {value.size} entries; the space has {len(space.depths)} depths")
        beta[int(m[1])] = value
    return alpha, beta


def convert_original_supernet(state_dict: Mapping[str, torch.Tensor], space: SearchSpace) -> ConvertedSupernet:
    """An original one-shot model (``MobileNasNet``, e.g. ``w_star``) as a :class:`HardCoReSupernet` state dict.

    Args:
        state_dict: The original supernet state dict (see :func:`original_state_dict`).
        space: The search space (the paper's by default in the CLI); shapes are checked against it.

    Raises:
        KeyMappingError: naming unmapped, missing, unexpected or mis-shaped keys.
        ValueError: for original variants our elastic block cannot represent.
    """
    sd = fill_missing_bn_counters(state_dict)
    _check_supernet_variant(sd, space)
    num_classes = _num_classes(sd)
    target = HardCoReSupernet(space, num_classes=num_classes).state_dict()
    last = len(space.expansions) - 1
    derived = re.compile(rf"stages\.\d+\.\d+\.se\.(?!{last}\.).*")
    expected = {k: tuple(v.shape) for k, v in target.items() if not derived.fullmatch(k)}
    try:
        out = remap_state_dict(sd, _supernet_rename(space), expected=expected, drop=(_ALPHA.pattern, _BETA.pattern))
    except KeyMappingError as err:
        raise KeyMappingError(
            f"the original supernet does not map onto HardCoReSupernet (ours stages.<s>.<j> = original "
            f"blocks.<s + 1>.<j>, stem_block = blocks.0.0, head_block = blocks.{space.num_stages + 1}.0)",
            unmapped=err.unmapped,
            missing=err.missing,
            unexpected=err.unexpected,
            collisions=err.collisions,
            shape_mismatches=err.shape_mismatches,
        ) from None
    for s in range(space.num_stages):
        for j in range(space.max_depth):
            full = f"stages.{s}.{j}.se.{last}"
            for ie in range(last):
                pre = f"stages.{s}.{j}.se.{ie}"
                rd, mid = target[f"{pre}.conv_reduce.weight"].shape[:2]
                out[f"{pre}.conv_reduce.weight"] = out[f"{full}.conv_reduce.weight"][:rd, :mid].clone()
                out[f"{pre}.conv_reduce.bias"] = out[f"{full}.conv_reduce.bias"][:rd].clone()
                out[f"{pre}.conv_expand.weight"] = out[f"{full}.conv_expand.weight"][:mid, :rd].clone()
                out[f"{pre}.conv_expand.bias"] = out[f"{full}.conv_expand.bias"][:mid].clone()
    out = {k: out[k] for k in target}
    alpha, beta = _architecture_variables(sd, space)
    return ConvertedSupernet(out, num_classes, alpha, beta)


def supernet_from_heaviest(
    state_dict: Mapping[str, torch.Tensor], space: SearchSpace, *, seed: int = 0
) -> ConvertedSupernet:
    """Embed the original heaviest network (``w_heaviest``) in a fresh supernet, as the original's multipath stage
    starts: the heaviest path exactly, its depthwise BN copied to every kernel, its output BN to every (expansion,
    SE) pair, its SE sliced to every expansion. The other kernels' depthwise convs are not in the source; they keep
    the supernet's initialisation (seeded) and are listed in ``initialised``.

    Args:
        state_dict: The original heaviest ``MobileNetV3`` state dict.
        space: The search space; the source must be its heaviest architecture.
        seed: Seed of the initialisation of the weights the source lacks.
    """
    heaviest = space.heaviest()
    if infer_child_architecture(state_dict, space) != heaviest:
        raise ValueError("the network is not the heaviest architecture of the space; convert it as a child")
    child, _ = convert_original_child(state_dict, space, arch=heaviest)
    num_classes = _num_classes(child)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        supernet = HardCoReSupernet(space, num_classes=num_classes)
    out = {k: v.detach().clone() for k, v in supernet.state_dict().items()}
    set_by_source: set[str] = set()

    def put(key: str, value: torch.Tensor) -> None:
        out[key] = value.detach().clone()
        set_by_source.add(key)

    for key, value in child.items():
        if key.startswith(_FRAME):
            put(key, value)
        elif key.startswith("blocks.0.0."):
            put("stem_block." + key[len("blocks.0.0.") :], value)
        elif key.startswith(f"blocks.{space.num_stages + 1}.0."):
            put("head_block." + key[len(f"blocks.{space.num_stages + 1}.0.") :], value)
    for s in range(space.num_stages):
        for j in range(space.max_depth):
            block = supernet.stages[s][j]
            src, dst = f"blocks.{s + 1}.{j}", f"stages.{s}.{j}"
            for name in ("conv_pw.weight", "conv_pwl.weight"):
                put(f"{dst}.{name}", child[f"{src}.{name}"])
            put(f"{dst}.conv_dw.{len(block.kernels) - 1}.weight", child[f"{src}.conv_dw.weight"])
            bn_keys = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
            for suffix in bn_keys:
                put(f"{dst}.bn1.{suffix}", child[f"{src}.bn1.{suffix}"])
                for ik in range(len(block.kernels)):
                    put(f"{dst}.bn2.{ik}.{suffix}", child[f"{src}.bn2.{suffix}"])
                for n in range(len(block.bn3)):
                    put(f"{dst}.bn3.{n}.{suffix}", child[f"{src}.bn3.{suffix}"])
            for ie, mid in enumerate(block.mid if block.se is not None else ()):
                rd = block.se[ie].conv_reduce.out_channels
                put(f"{dst}.se.{ie}.conv_reduce.weight", child[f"{src}.se.conv_reduce.weight"][:rd, :mid])
                put(f"{dst}.se.{ie}.conv_reduce.bias", child[f"{src}.se.conv_reduce.bias"][:rd])
                put(f"{dst}.se.{ie}.conv_expand.weight", child[f"{src}.se.conv_expand.weight"][:mid, :rd])
                put(f"{dst}.se.{ie}.conv_expand.bias", child[f"{src}.se.conv_expand.bias"][:mid])
    initialised = [k for k in out if k not in set_by_source]
    unexpected = [k for k in initialised if not re.fullmatch(r"stages\.\d+\.\d+\.conv_dw\.\d+\.weight", k)]
    if unexpected:
        raise RuntimeError(f"embedding the heaviest network left unexpected keys unset: {unexpected[:10]}")
    load_into(supernet, out)
    return ConvertedSupernet(out, num_classes, initialised=initialised)


# ---------------------------------------------------------------------------------------------------- files
def convert_original_checkpoint(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    space: SearchSpace,
    to: str = "auto",
    arch: Architecture | str | list | None = None,
    use_ema: bool = False,
    part: str | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Convert an original checkpoint file into ``dst`` (``.safetensors``) and its ``.json`` sidecar.

    The sidecar makes the result loadable by :func:`~miil.hardcore.checkpoints.load_supernet` (``kind``
    ``"supernet"``: ``search``, ``extract``, ``finetune``, ``train-supernet --init``) or
    :func:`~miil.hardcore.checkpoints.load_child` (``kind`` ``"child"``: ``validate``, ``infer``).

    Args:
        src: The original ``.pth`` / ``.pth.tar`` (loaded without unpickling code) or a ``.safetensors`` file.
        dst: Output ``.safetensors`` path.
        space: The search space of the source.
        to: ``"auto"`` (the source's own layout), ``"supernet"`` (a heaviest network is embedded as the original's
            multipath stage starts) or ``"child"`` (a supernet is sliced to ``arch`` or its argmax architecture).
        arch: The child's architecture; default: read from the shapes, or the supernet's ``alpha`` / ``beta``.
        use_ema: Take ``state_dict_ema`` of a training output.
        part: ``"student"`` / ``"teacher"`` of a multipath-stage output (default: student).

    Returns:
        ``(dst, sidecar)``.
    """
    src, dst = Path(src), Path(dst)
    if dst.suffix != ".safetensors":
        raise ValueError(f"the output must be a .safetensors file, got {dst}")
    if to not in ("auto", "supernet", "child"):
        raise ValueError(f"to must be 'auto', 'supernet' or 'child', got {to!r}")
    sd = original_state_dict(load_checkpoint(src), use_ema=use_ema, part=part)
    layout = detect_original_layout(sd)
    target = layout if to == "auto" else to
    meta: dict[str, Any] = {"source": str(src), "source_layout": layout, "space": space.to_dict()}
    meta["img_size"] = space.image_size
    if target == "supernet":
        convert = convert_original_supernet if layout == "supernet" else supernet_from_heaviest
        result = convert(sd, space)
        found = result.architecture(space)
        meta.update(kind="supernet", num_classes=result.num_classes, initialised=result.initialised)
        if result.alpha is not None:
            meta.update(alpha=result.alpha.tolist(), beta=result.beta.tolist())
        meta["argmax_arch_def"] = space.arch_def(found) if found is not None else None
        weights = result.state_dict
    else:
        if layout == "supernet":
            result = convert_original_supernet(sd, space)
            chosen = result.architecture(space) if arch is None else resolve_architecture(space, arch)
            if chosen is None:
                raise ValueError(
                    "the supernet's alpha/beta do not single out an architecture (absent or tied); pass arch"
                )
            supernet = HardCoReSupernet(space, num_classes=result.num_classes)
            load_into(supernet, result.state_dict)
            weights, num_classes = child_state_dict(supernet, chosen), result.num_classes
        else:
            weights, chosen = convert_original_child(sd, space, arch=arch)
            num_classes = _num_classes(weights)
        meta.update(kind="child", num_classes=num_classes, arch_def=space.arch_def(chosen))
    save_safetensors(weights, dst)
    atomic_write_text(dst.with_suffix(".json"), json.dumps(meta, indent=1))
    return dst, meta
