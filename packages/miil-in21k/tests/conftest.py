"""Fixtures: a small WordNet 3.0 database in the Princeton format (real synsets and offsets, trimmed pointer lists),
so that the WordNet tests run without Debian's wordnet-base."""

from pathlib import Path

import pytest
import torch

# offset lex_filenum n w_cnt(hex) words... p_cnt(dec) pointers... | gloss   (real WordNet 3.0 entries, fewer pointers)
WORDNET_LINES = """\
00001740 03 n 01 entity 0 001 ~ 00001930 n 0000 | that which is perceived or known or inferred to have its own existence
00001930 03 n 01 physical_entity 0 002 @ 00001740 n 0000 ~ 00002684 n 0000 | an entity that has physical existence
00002684 03 n 02 object 0 physical_object 0 002 @ 00001930 n 0000 + 00532607 v 0105 | a tangible and visible entity
00003553 03 n 02 whole 0 unit 0 001 @ 00002684 n 0000 | an assemblage of parts that is regarded as a single entity
00004258 03 n 02 living_thing 0 animate_thing 0 001 @ 00003553 n 0000 | a living (or once living) entity
00004475 03 n 02 organism 0 being 0 002 @ 00004258 n 0000 -c 00270856 a 0000 | a living thing that can act independently
00007347 03 n 01 causal_agent 0 001 @ 00001930 n 0000 | produces an effect
00007846 03 n 06 person 0 individual 0 someone 0 somebody 0 mortal 0 soul 0 002 @ 00004475 n 0000 @ 00007347 n 0000 | a
00015388 03 n 06 animal 0 animate_being 0 beast 0 brute 0 creature 0 fauna 0 001 @ 00004475 n 0000 | organism
01317541 05 n 02 domestic_animal 0 domesticated_animal 0 002 @ 00015388 n 0000 ~ 02084071 n 0000 | tame animals
01466257 05 n 01 chordate 0 001 @ 00015388 n 0000 | any animal of the phylum Chordata
01471682 05 n 02 vertebrate 0 craniate 0 001 @ 01466257 n 0000 | animals having a bony or cartilaginous skeleton
01503061 05 n 01 bird 0 001 @ 01471682 n 0000 | warm-blooded egg-laying vertebrates
01844917 05 n 01 aquatic_bird 0 001 @ 01503061 n 0000 | wading and swimming and diving birds
01858441 05 n 01 swan 0 001 @ 01844917 n 0000 | stately heavy-bodied aquatic bird with very long neck
01861778 05 n 02 mammal 0 mammalian 0 001 @ 01471682 n 0000 | warm-blooded vertebrate with hair
01886756 05 n 04 placental 0 placental_mammal 0 eutherian 0 eutherian_mammal 0 001 @ 01861778 n 0000 | placenta
02075296 05 n 01 carnivore 0 001 @ 01886756 n 0000 | a terrestrial or aquatic flesh-eating mammal
02083346 05 n 02 canine 0 canid 0 001 @ 02075296 n 0000 | any of various fissiped mammals
02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 002 @ 02083346 n 0000 @ 01317541 n 0000 | a dog
02111626 05 n 01 spitz 0 002 @ 02084071 n 0000 ~ 02111889 n 0000 | any of various stocky heavy-coated breeds of dogs
02111889 05 n 02 Samoyed 0 Samoyede 0 001 @ 02111626 n 0000 | Siberian breed of white or cream-colored dog
10560637 18 n 01 scientist 0 001 @ 00007846 n 0000 | a person with advanced knowledge of one or more sciences
10428004 18 n 01 physicist 0 001 @ 10560637 n 0000 | a scientist trained in physics
10954498 18 n 02 Einstein 0 Albert_Einstein 0 002 @i 10428004 n 0000 + 03031248 a 0101 | physicist born in Germany
"""

LICENSE_HEADER = (
    "  1 This software and database is being provided to you, the LICENSEE, by  \n  2 Princeton University.  \n"
)


@pytest.fixture
def wordnet_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "wordnet"
    folder.mkdir()
    (folder / "data.noun").write_text(LICENSE_HEADER + WORDNET_LINES, encoding="utf-8")
    return folder


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared CPU thread hand-offs dominate: run them on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class CreatesFile:
    """Unpickled, this would create a file: the payload of a malicious checkpoint (see miil-core's test_io)."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))
