"""A reader for the noun synsets of a Princeton-format WordNet 3.0 database.

Paper: "ImageNet-21K Pretraining for the Masses", Ridnik et al., NeurIPS 2021 Datasets and Benchmarks (arXiv
2104.10972), Sec. 3: ImageNet-21K classes are WordNet noun synsets, and the semantic tree of the dataset comes from
their hypernym ("is-a") relations.

The database is the one Debian's ``wordnet-base`` installs in ``/usr/share/wordnet`` and NLTK's ``wordnet`` corpus
holds (a folder or its ``wordnet.zip``). Only ``data.noun`` is read: one synset per line,

    offset lex_filenum n w_cnt word lex_id [word lex_id ...] p_cnt [symbol offset pos source/target ...] | gloss

with ``w_cnt`` in hexadecimal and ``p_cnt`` in decimal. An ImageNet id is ``"n"`` followed by the 8-digit offset.
Hypernyms are the ``@`` (class) and ``@i`` (instance) pointers to nouns, in that order, each in file order, which is
the order NLTK's ``hypernyms() + instance_hypernyms()`` uses.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NounSynset", "WordNet", "find_wordnet", "PATH_RULES"]

PATH_RULES = ("shortest", "first", "longest")

_DEFAULT_DIRS = (
    "/usr/share/wordnet",
    "/usr/local/share/wordnet",
    "/usr/share/nltk_data/corpora/wordnet",
    "/usr/local/share/nltk_data/corpora/wordnet",
    "/usr/lib/nltk_data/corpora/wordnet",
    "/usr/local/lib/nltk_data/corpora/wordnet",
)


@dataclass(frozen=True)
class NounSynset:
    """One noun synset.

    Args:
        wnid: ImageNet-style id, ``"n"`` + 8-digit offset.
        lemmas: The synset's words, underscores for spaces (``("domestic_animal", "domesticated_animal")``).
        hypernyms: Ids of its ``@`` then ``@i`` hypernyms.
        gloss: The definition and examples.
    """

    wnid: str
    lemmas: tuple[str, ...]
    hypernyms: tuple[str, ...]
    gloss: str

    @property
    def name(self) -> str:
        """The first lemma, as NLTK's ``synset.lemma_names()[0]`` (what the original tree files use)."""
        return self.lemmas[0]


def _nltk_dirs() -> list[Path]:
    roots = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    roots.append(str(Path.home() / "nltk_data"))
    return [Path(r) / "corpora" / "wordnet" for r in roots]


def find_wordnet() -> Path:
    """The first WordNet database found: ``$WORDNET_DIR``, Debian's ``/usr/share/wordnet``, then NLTK's folders.

    Returns:
        A folder holding ``data.noun`` or an NLTK ``wordnet.zip``.
    """
    candidates: list[Path] = []
    if os.environ.get("WORDNET_DIR"):
        candidates.append(Path(os.environ["WORDNET_DIR"]))
    candidates += [Path(d) for d in _DEFAULT_DIRS] + _nltk_dirs()
    for folder in candidates:
        if (folder / "data.noun").is_file():
            return folder
        archive = folder.with_suffix(".zip")
        if archive.is_file():
            return archive
    searched = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"no WordNet 3.0 database found (searched {searched}); install Debian's wordnet-base "
        "(apt-get install wordnet-base), run nltk.download('wordnet'), or pass the folder that holds data.noun"
    )


def _open_data_noun(path: Path) -> tuple[str, io.TextIOBase]:
    """(display name, text stream) of data.noun inside a folder, a zip, or the file itself."""
    if path.is_dir():
        target = path / "data.noun"
        if not target.is_file():
            raise FileNotFoundError(f"{path} has no data.noun; pass a WordNet 3.0 'dict' folder")
        return str(target), open(target, encoding="utf-8")
    if path.suffix == ".zip":
        archive = zipfile.ZipFile(path)
        names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "data.noun"]
        if not names:
            archive.close()
            raise FileNotFoundError(f"{path} holds no data.noun")
        raw = archive.open(names[0])
        return f"{path}:{names[0]}", io.TextIOWrapper(raw, encoding="utf-8")
    if path.is_file():
        return str(path), open(path, encoding="utf-8")
    raise FileNotFoundError(f"WordNet path {path} does not exist")


def _parse_line(line: str, where: str) -> NounSynset:
    head, sep, gloss = line.partition(" | ")
    fields = head.split()
    try:
        offset = fields[0]
        if fields[2] != "n":
            raise ValueError(f"synset type {fields[2]!r} is not a noun")
        w_cnt = int(fields[3], 16)
        lemmas = tuple(fields[4 + 2 * k] for k in range(w_cnt))
        pos = 4 + 2 * w_cnt
        p_cnt = int(fields[pos])
        pos += 1
        hyper: list[str] = []
        instance: list[str] = []
        for _ in range(p_cnt):
            symbol, target, target_pos = fields[pos], fields[pos + 1], fields[pos + 2]
            pos += 4
            if target_pos == "n" and symbol == "@":
                hyper.append("n" + target)
            elif target_pos == "n" and symbol == "@i":
                instance.append("n" + target)
    except (IndexError, ValueError) as err:
        raise ValueError(f"{where}: not a WordNet data.noun synset line ({err}): {line[:120]!r}") from None
    if not (len(offset) == 8 and offset.isdigit()) or not lemmas:
        raise ValueError(f"{where}: bad synset offset {offset!r} or no words in {line[:120]!r}")
    return NounSynset("n" + offset, lemmas, tuple(hyper + instance), gloss.strip() if sep else "")


class WordNet:
    """The noun synsets of a WordNet database, with hypernym paths.

    Args:
        synsets: Synsets by ImageNet id.
        source: Where they were read from (for messages).
    """

    def __init__(self, synsets: dict[str, NounSynset], *, source: str = "<memory>"):
        self.synsets = synsets
        self.source = source
        self._paths: dict[tuple[str, str], tuple[str, ...]] = {}

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> WordNet:
        """Read ``data.noun`` from a folder, an NLTK ``wordnet.zip``, or the file itself.

        Args:
            path: The database; ``None`` searches the usual places (:func:`find_wordnet`).
        """
        where, stream = _open_data_noun(Path(path) if path is not None else find_wordnet())
        synsets: dict[str, NounSynset] = {}
        with stream:
            for number, line in enumerate(stream, 1):
                if line.startswith("  ") or not line.strip():
                    continue  # the license header is indented by two spaces
                synset = _parse_line(line.rstrip("\n"), f"{where}:{number}")
                synsets[synset.wnid] = synset
        if not synsets:
            raise ValueError(f"{where} holds no noun synsets")
        return cls(synsets, source=where)

    def __contains__(self, wnid: object) -> bool:
        return wnid in self.synsets

    def __getitem__(self, wnid: str) -> NounSynset:
        try:
            return self.synsets[wnid]
        except KeyError:
            raise KeyError(f"WordNet id {wnid!r} is not a noun synset of {self.source}") from None

    def __len__(self) -> int:
        return len(self.synsets)

    def __iter__(self) -> Iterator[str]:
        return iter(self.synsets)

    def path_to_root(self, wnid: str, rule: str = "shortest") -> tuple[str, ...]:
        """One hypernym chain from a root synset (``entity``) down to ``wnid``, both included.

        WordNet is a DAG: a synset can have several hypernyms (``dog`` is a ``canine`` and a ``domestic_animal``).

        Args:
            wnid: The synset.
            rule: Which chain: ``"shortest"`` (fewest synsets; ties go to the earlier hypernym, i.e. the first
                shortest of NLTK's ``hypernym_paths()``), ``"first"`` (always the first hypernym) or ``"longest"``.
        """
        if rule not in PATH_RULES:
            raise ValueError(f"path rule must be one of {PATH_RULES}, got {rule!r}")
        return self._path(wnid, rule, ())

    def _path(self, wnid: str, rule: str, visiting: tuple[str, ...]) -> tuple[str, ...]:
        key = (wnid, rule)
        if key in self._paths:
            return self._paths[key]
        if wnid in visiting:
            raise ValueError(f"hypernym cycle in {self.source}: {' -> '.join((*visiting, wnid))}")
        parents = self[wnid].hypernyms
        missing = [p for p in parents if p not in self.synsets]
        if missing:
            raise ValueError(f"{self.source}: hypernyms {missing} of {wnid} are not noun synsets of the database")
        if not parents:
            path: tuple[str, ...] = (wnid,)
        else:
            chains = [self._path(p, rule, (*visiting, wnid)) for p in parents]
            if rule == "first":
                best = chains[0]
            elif rule == "shortest":
                best = min(chains, key=len)  # min/max keep the first of equals
            else:
                best = max(chains, key=len)
            path = (*best, wnid)
        self._paths[key] = path
        return path

    def lemmas(self, wnids: Iterable[str]) -> list[tuple[str, ...]]:
        """The lemmas of each synset in ``wnids``."""
        return [self[w].lemmas for w in wnids]
