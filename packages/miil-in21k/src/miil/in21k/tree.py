"""The semantic class tree of ImageNet-21K-P: WordNet restricted to the dataset's classes.

Paper: "ImageNet-21K Pretraining for the Masses", Ridnik et al. (arXiv 2104.10972), Sec. 3 and Fig. 2: every class
is a WordNet synset; walking up its hypernyms and keeping only the synsets that are themselves classes of the
dataset gives the class's chain of semantic parents (``swan -> aquatic_bird -> bird -> vertebrate -> animal``). A
class's depth in this tree is its hierarchy level (0 for classes with no parent among the classes); fall11 spans the
levels 0 to 11 (Fig. 2 trains softmax layers 0 to 10).

WordNet is a DAG, so a class may have several hypernym chains. The released trees answer this for ``dog``: its
released chain is ``Samoyed -> spitz -> dog -> domestic_animal -> animal`` (the original repo's
``pics/dog_inference.png``), i.e. the shorter of its two WordNet chains (the other runs through ``canine``,
``carnivore``, ``placental``, ``mammal`` and ``vertebrate``, all of them classes). We therefore take each class's
shortest WordNet hypernym chain (ties: the earlier hypernym) by default; ``path_rule`` selects another rule.

File formats:

* the original ``imagenet21k_miil_tree.pth``: a ``torch.save`` dict with ``class_list`` (ids in class-index order),
  ``class_description`` ({id: name}) and ``class_tree_list`` (for class ``i``, ``[i, parent, ..., root]``); the
  same dict written as ``.json`` / ``.json.gz`` (e.g. ``json.dump`` of the loaded original) or a plain pickle is
  read too. Files open through :func:`miil.core.io.load_file`: nothing in them is executed;
* our compact ``.json`` / ``.json.gz``: ids, names, lemmas and one parent index per class. The fall11 and winter21
  trees ship in this form inside the package (regenerate them with ``tools/in21k/build_class_trees.py``).
"""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from .wordnet import PATH_RULES, WordNet

__all__ = ["ClassInfo", "SemanticTree", "VARIANTS", "load_tree", "packaged_tree"]

VARIANTS = ("fall11", "winter21")
_FORMAT = "miil-in21k-tree"
_FORMAT_VERSION = 1
_ORIGINAL_FIELDS = {"class_list", "class_tree_list"}  # class_description is optional


@dataclass(frozen=True)
class ClassInfo:
    """What the tree knows about one class.

    Args:
        index: Class index (the model's output column).
        wnid: Class id (a WordNet id for ImageNet classes).
        name: Short name (the synset's first lemma).
        level: Depth in the tree (0 = no parent among the classes).
        ancestors: Ids of the parent, grand-parent, ... up to the root.
        ancestor_names: Their names.
        children: Ids of the classes whose parent this class is.
        lemmas: All the synset's words, when known.
    """

    index: int
    wnid: str
    name: str
    level: int
    ancestors: tuple[str, ...]
    ancestor_names: tuple[str, ...]
    children: tuple[str, ...]
    lemmas: tuple[str, ...]


class SemanticTree:
    """A forest over ``C`` classes: one parent (or none) per class.

    Args:
        class_list: The class ids in class-index order (the original sorts them, like ``ImageFolder``).
        parents: For each class, the index of its parent class, or -1 for a root.
        names: Short names (default: the ids).
        lemmas: All words of each class (optional).
        meta: Free-form facts about where the tree came from (variant, WordNet source, path rule).
    """

    def __init__(
        self,
        class_list: Sequence[str],
        parents: Sequence[int],
        *,
        names: Sequence[str] | None = None,
        lemmas: Sequence[Sequence[str]] | None = None,
        meta: Mapping[str, Any] | None = None,
    ):
        self.class_list = [str(c) for c in class_list]
        n = len(self.class_list)
        if n == 0:
            raise ValueError("a semantic tree needs at least one class")
        counts = Counter(self.class_list)
        dupes = sorted(c for c, k in counts.items() if k > 1)
        if dupes:
            raise ValueError(f"class ids listed more than once: {dupes[:10]}")
        self.parents = [int(p) for p in parents]
        if len(self.parents) != n:
            raise ValueError(f"{len(self.parents)} parents for {n} classes")
        bad = [(i, p) for i, p in enumerate(self.parents) if p < -1 or p >= n or p == i]
        if bad:
            raise ValueError(f"invalid parent indices (class, parent): {bad[:10]}; use -1 for a root")
        self.names = [str(x) for x in names] if names is not None else list(self.class_list)
        if len(self.names) != n:
            raise ValueError(f"{len(self.names)} names for {n} classes")
        self.lemmas = [tuple(str(w) for w in ws) for ws in lemmas] if lemmas is not None else None
        if self.lemmas is not None and len(self.lemmas) != n:
            raise ValueError(f"{len(self.lemmas)} lemma lists for {n} classes")
        self.meta = dict(meta or {})
        self.index_of = {c: i for i, c in enumerate(self.class_list)}
        self.depths = self._compute_depths()
        self._children: list[list[int]] = [[] for _ in range(n)]
        for i, p in enumerate(self.parents):
            if p >= 0:
                self._children[p].append(i)

    def _compute_depths(self) -> list[int]:
        depth = [-1] * len(self.parents)
        for start in range(len(self.parents)):
            chain = []
            node = start
            while node >= 0 and depth[node] < 0:
                if node in chain:
                    cycle = [self.class_list[k] for k in chain[chain.index(node) :]]
                    raise ValueError(f"the parent links form a cycle: {' -> '.join(cycle)}")
                chain.append(node)
                node = self.parents[node]
            base = depth[node] if node >= 0 else -1
            for k, c in enumerate(reversed(chain)):
                depth[c] = base + 1 + k
        return depth

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_class_tree_list(
        cls,
        class_list: Sequence[str],
        class_tree_list: Sequence[Sequence[int]],
        *,
        class_description: Mapping[str, str] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> SemanticTree:
        """Build from the original format's ``class_tree_list`` (``[i, parent, ..., root]`` per class), checking it.

        Args:
            class_list: Class ids in class-index order.
            class_tree_list: For class ``i``, the chain of class indices from ``i`` up to its root.
            class_description: {id: name}.
            meta: Facts about the source.
        """
        n = len(class_list)
        if len(class_tree_list) != n:
            raise ValueError(f"class_tree_list has {len(class_tree_list)} entries for {n} classes")
        chains = [[int(x) for x in chain] for chain in class_tree_list]
        parents = []
        for i, chain in enumerate(chains):
            if not chain or chain[0] != i:
                raise ValueError(f"class_tree_list[{i}] = {chain[:12]} must start with the class's own index {i}")
            parents.append(chain[1] if len(chain) > 1 else -1)
        for i, chain in enumerate(chains):
            if len(chain) > 1 and not 0 <= chain[1] < n:
                raise ValueError(f"class_tree_list[{i}] names class {chain[1]}, outside 0..{n - 1}")
            if len(chain) > 1 and chains[chain[1]] != chain[1:]:
                raise ValueError(
                    f"class_tree_list[{i}] = {chain} disagrees with its parent's chain "
                    f"class_tree_list[{chain[1]}] = {chains[chain[1]]}"
                )
        names = None
        if class_description is not None:
            missing = [c for c in class_list if c not in class_description]
            if missing:
                raise ValueError(f"class_description lacks {len(missing)} classes, e.g. {missing[:5]}")
            names = [str(class_description[c]) for c in class_list]
        return cls(class_list, parents, names=names, meta=meta)

    @classmethod
    def from_wordnet(
        cls,
        wnids: Sequence[str],
        wordnet: WordNet | str | os.PathLike | None = None,
        *,
        path_rule: str = "shortest",
        meta: Mapping[str, Any] | None = None,
    ) -> SemanticTree:
        """The tree of ``wnids`` from WordNet's hypernym chains, restricted to ``wnids`` (module docstring).

        Args:
            wnids: Class ids (``"n02084071"``) in class-index order.
            wordnet: A loaded :class:`WordNet`, a path to one, or ``None`` to search the usual places.
            path_rule: Which hypernym chain of a multi-parent synset to follow (see :meth:`WordNet.path_to_root`).
            meta: Extra facts to record.
        """
        if path_rule not in PATH_RULES:
            raise ValueError(f"path_rule must be one of {PATH_RULES}, got {path_rule!r}")
        wn = wordnet if isinstance(wordnet, WordNet) else WordNet.load(wordnet)
        unknown = [w for w in wnids if w not in wn]
        if unknown:
            raise ValueError(f"{len(unknown)} ids are not noun synsets of {wn.source}, e.g. {unknown[:5]}")
        index = {w: i for i, w in enumerate(wnids)}
        parents = []
        for w in wnids:
            chain = wn.path_to_root(w, path_rule)  # root ... w
            kept = [a for a in chain[:-1] if a in index]
            parents.append(index[kept[-1]] if kept else -1)
        info = {"wordnet": wn.source, "path_rule": path_rule, **dict(meta or {})}
        lemmas = wn.lemmas(wnids)
        return cls(wnids, parents, names=[ws[0] for ws in lemmas], lemmas=lemmas, meta=info)

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self.class_list)

    def __repr__(self) -> str:
        variant = self.meta.get("variant")
        tag = f", variant={variant!r}" if variant else ""
        return f"SemanticTree(classes={len(self)}, levels={self.num_levels}{tag})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SemanticTree):
            return NotImplemented
        return self.class_list == other.class_list and self.parents == other.parents and self.names == other.names

    @property
    def num_levels(self) -> int:
        """Number of depths present (max depth + 1)."""
        return max(self.depths) + 1

    @property
    def max_depth(self) -> int:
        return max(self.depths)

    def index(self, key: str | int) -> int:
        """The class index of an id (``"n02084071"``), or of an index (checked)."""
        if isinstance(key, int) and not isinstance(key, bool):
            if not 0 <= key < len(self):
                raise IndexError(f"class index {key} outside 0..{len(self) - 1}")
            return key
        try:
            return self.index_of[str(key)]
        except KeyError:
            raise KeyError(f"{key!r} is not a class id of this tree ({len(self)} classes)") from None

    def find(self, name: str) -> list[int]:
        """Indices of the classes whose name or any lemma equals ``name`` (case-insensitive, spaces = ``_``)."""
        want = name.strip().replace(" ", "_").lower()
        out = []
        for i in range(len(self)):
            words = self.lemmas[i] if self.lemmas is not None else (self.names[i],)
            if self.names[i].lower() == want or any(w.lower() == want for w in words):
                out.append(i)
        return out

    def resolve(self, key: str | int) -> int:
        """A class index from an index, an id, or a name (a class's own name wins over other classes' lemmas)."""
        if isinstance(key, int) or str(key) in self.index_of:
            return self.index(key)
        if isinstance(key, str) and key.isdigit():
            return self.index(int(key))
        found = self.find(str(key))
        primary = [i for i in found if self.names[i].lower() == str(key).strip().replace(" ", "_").lower()]
        if len(found) == 1 or len(primary) == 1:
            return primary[0] if len(primary) == 1 else found[0]
        if not found:
            raise KeyError(f"no class has the id or name {key!r}")
        options = ", ".join(f"{self.class_list[i]} ({self.names[i]}, level {self.depths[i]})" for i in found[:10])
        raise KeyError(f"the name {key!r} matches {len(found)} classes: {options}; pass an id")

    def name(self, key: str | int) -> str:
        return self.names[self.resolve(key)]

    def level(self, key: str | int) -> int:
        """Depth of a class (0 = root level)."""
        return self.depths[self.resolve(key)]

    def parent(self, key: str | int) -> int:
        """Index of the parent class, -1 for a root."""
        return self.parents[self.resolve(key)]

    def ancestors(self, key: str | int) -> list[int]:
        """Indices of the parent, grand-parent, ... up to the root (empty for a root)."""
        out = []
        node = self.parents[self.resolve(key)]
        while node >= 0:
            out.append(node)
            node = self.parents[node]
        return out

    def children(self, key: str | int) -> list[int]:
        """Indices of the classes whose parent is this class."""
        return list(self._children[self.resolve(key)])

    def descendants(self, key: str | int) -> list[int]:
        """Indices of every class below this one."""
        out, stack = [], list(self._children[self.resolve(key)])
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(self._children[node])
        return sorted(out)

    def classes_at_level(self, level: int) -> list[int]:
        """Indices of the classes at depth ``level``, ascending."""
        return [i for i, d in enumerate(self.depths) if d == level]

    def describe(self, key: str | int) -> ClassInfo:
        """Name, level, ancestors and children of one class."""
        i = self.resolve(key)
        anc = self.ancestors(i)
        return ClassInfo(
            index=i,
            wnid=self.class_list[i],
            name=self.names[i],
            level=self.depths[i],
            ancestors=tuple(self.class_list[a] for a in anc),
            ancestor_names=tuple(self.names[a] for a in anc),
            children=tuple(self.class_list[c] for c in self._children[i]),
            lemmas=self.lemmas[i] if self.lemmas is not None else (self.names[i],),
        )

    @property
    def class_tree_list(self) -> list[list[int]]:
        """The original format's chains: ``[i, parent, ..., root]`` for each class ``i``."""
        return [[i, *self.ancestors(i)] for i in range(len(self))]

    def level_histogram(self) -> list[int]:
        """Number of classes at each depth 0..max_depth."""
        counts = Counter(self.depths)
        return [counts.get(d, 0) for d in range(self.num_levels)]

    def statistics(self) -> list[dict[str, Any]]:
        """Per depth: classes at that depth, classes at or below it, roots among them, leaves among them."""
        hist = self.level_histogram()
        rows = []
        for d, count in enumerate(hist):
            members = self.classes_at_level(d)
            rows.append(
                {
                    "level": d,
                    "classes": count,
                    "classes_at_or_below": sum(hist[d:]),
                    "leaves": sum(1 for i in members if not self._children[i]),
                    "with_children": sum(1 for i in members if self._children[i]),
                }
            )
        return rows

    # ------------------------------------------------------------------ I/O
    def to_original(self) -> dict[str, Any]:
        """The original tree-file dict (``class_list``, ``class_description``, ``class_tree_list``)."""
        return {
            "class_list": list(self.class_list),
            "class_description": {c: n for c, n in zip(self.class_list, self.names)},
            "class_tree_list": self.class_tree_list,
        }

    def to_json_dict(self) -> dict[str, Any]:
        """Our compact JSON form."""
        out: dict[str, Any] = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "meta": self.meta,
            "class_list": self.class_list,
            "names": self.names,
            "parents": self.parents,
        }
        if self.lemmas is not None:
            # Only the lemmas beyond the name, to keep the file small.
            out["other_lemmas"] = [
                list(ws[1:]) if ws and ws[0] == n else list(ws) for ws, n in zip(self.lemmas, self.names)
            ]
        return out

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> SemanticTree:
        """Inverse of :meth:`to_json_dict`."""
        if data.get("format") != _FORMAT:
            raise ValueError(
                f"{source} is neither a {_FORMAT} file (format = {data.get('format')!r}) nor the original tree dict "
                "(class_list, class_description, class_tree_list)"
            )
        if int(data.get("version", 0)) > _FORMAT_VERSION:
            raise ValueError(
                f"{source} has format version {data['version']}; this miil-in21k reads <= {_FORMAT_VERSION}"
            )
        try:
            names = data["names"]
            lemmas = None
            if "other_lemmas" in data:
                lemmas = [[n, *rest] for n, rest in zip(names, data["other_lemmas"])]
            return cls(data["class_list"], data["parents"], names=names, lemmas=lemmas, meta=data.get("meta"))
        except KeyError as err:
            raise ValueError(f"{source} lacks the field {err}") from None

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tree: ``.pth`` / ``.pt`` in the original format, ``.json`` / ``.json.gz`` in ours."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        name = path.name.lower()
        tmp = path.with_name(path.name + ".tmp")
        if name.endswith((".pth", ".pt")):
            import torch

            torch.save(self.to_original(), tmp)
        elif name.endswith(".json.gz"):
            raw = json.dumps(self.to_json_dict(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            with open(tmp, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, filename="") as gz:
                gz.write(raw)  # mtime=0 and no file name: the same tree always gives the same bytes
        elif name.endswith(".json"):
            tmp.write_text(json.dumps(self.to_json_dict(), indent=1, ensure_ascii=False), encoding="utf-8")
        else:
            raise ValueError(f"unknown tree file type {path}; use .pth (original format), .json or .json.gz")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> SemanticTree:
        """Read a tree file: the original dict as ``.pth`` / ``.pt``, ``.pkl`` or JSON, or our ``.json`` / ``.json.gz``.

        Every file opens through :func:`miil.core.io.load_file`, which never unpickles arbitrary objects (only
        tensors, numpy arrays and plain containers); a file that would need more is refused with a user error.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"tree file {path} does not exist")
        name = path.name.lower()
        if name.endswith(".json.gz"):
            try:
                with gzip.open(path, "rt", encoding="utf-8") as fh:
                    data = json.load(fh)
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                raise ValueError(f"tree file {path} is not readable JSON ({type(err).__name__}: {err})") from None
        else:
            data = _load_tree_file(path)
        if name.endswith((".json", ".json.gz")):
            if not isinstance(data, Mapping):
                raise ValueError(f"tree file {path} holds a JSON {type(data).__name__}, not a tree")
            # Ours names its format; the original dict is recognised by its two required fields.
            if "format" not in data and set(data) >= _ORIGINAL_FIELDS:
                return cls.from_original(data, source=str(path))
            return cls.from_json_dict(data, source=str(path))
        return cls.from_original(data, source=str(path))

    @classmethod
    def from_original(cls, obj: Any, *, source: str = "<dict>") -> SemanticTree:
        """Build from the original tree-file dict, as ``torch.load`` or ``json.load`` returns it.

        The dict holds ``class_list``, ``class_tree_list`` and optionally ``class_description``.

        Args:
            obj: The dict.
            source: How error messages name it.
        """
        if not isinstance(obj, Mapping) or not set(obj) >= _ORIGINAL_FIELDS:
            keys = sorted(map(str, obj)) if isinstance(obj, Mapping) else type(obj).__name__
            raise ValueError(
                f"{source} is not an ImageNet-21K tree file (needs class_list and class_tree_list): {keys}"
            )
        try:
            class_list = [str(c) for c in _as_list(obj["class_list"])]
            chains = [[int(x) for x in _as_list(chain)] for chain in _as_list(obj["class_tree_list"])]
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: class_list / class_tree_list are not lists of ids / indices ({err})") from None
        description = obj.get("class_description")
        desc = {str(k): str(v) for k, v in description.items()} if isinstance(description, Mapping) else None
        try:
            return cls.from_class_tree_list(class_list, chains, class_description=desc, meta={"source": source})
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None


def _as_list(x: Any) -> list:
    if hasattr(x, "tolist"):
        return x.tolist()
    return list(x)


def _load_tree_file(path: Path) -> Any:
    """:func:`miil.core.io.load_file`, admitting the numpy arrays and scalars an original ``.pth`` tree may hold."""
    from miil.core.io import load_file

    if not path.name.lower().endswith((".pth", ".pt", ".tar", ".bin", ".ckpt")):
        return load_file(path, what="tree file")
    import numpy as np
    import torch

    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray

    safe: list[Any] = []
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        safe += [(multiarray._reconstruct, f"{module}._reconstruct"), (multiarray.scalar, f"{module}.scalar")]
    safe += [np.ndarray, np.dtype]
    safe += [type(np.dtype(code)) for code in ("U1", "S1", "int64", "int32", "int16", "uint8", "float32", "float64")]
    with torch.serialization.safe_globals(safe):
        return load_file(path, what="tree file")


@lru_cache(maxsize=4)
def _packaged(variant: str) -> SemanticTree:
    ref = resources.files("miil.in21k") / "resources" / f"{variant}.json.gz"
    with ref.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        return SemanticTree.from_json_dict(json.load(fh), source=f"miil.in21k/resources/{variant}.json.gz")


def packaged_tree(variant: str = "fall11") -> SemanticTree:
    """The ImageNet-21K-P tree shipped with the package: ``"fall11"`` (11,221 classes) or ``"winter21"`` (10,450).

    Built from WordNet 3.0 by ``tools/in21k/build_class_trees.py``; works offline.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown ImageNet-21K-P variant {variant!r}; shipped: {', '.join(VARIANTS)}")
    return _packaged(variant)


def load_tree(spec: str | os.PathLike | SemanticTree) -> SemanticTree:
    """A tree from a shipped variant name (``"fall11"``, ``"winter21"``), a tree file, or a tree (returned as is)."""
    if isinstance(spec, SemanticTree):
        return spec
    if isinstance(spec, str) and spec in VARIANTS:
        return packaged_tree(spec)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"tree {spec!r} is neither a shipped variant ({', '.join(VARIANTS)}) nor a file")
    return SemanticTree.load(path)
