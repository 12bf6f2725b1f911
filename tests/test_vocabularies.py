"""The shipped general vocabularies (hf_zsl/vocabularies) and their loader."""

import pytest

from hf_zsl.vocabularies import VOCABULARIES, exclude, load_vocabulary, normalise


@pytest.mark.parametrize("name,minimum", [("open_semantics", 2000), ("visual_concepts", 3000)])
def test_vocabulary_loads_without_blanks_or_duplicates(name, minimum):
    entries = load_vocabulary(name)
    assert len(entries) >= minimum
    assert all(e == e.strip() and e and "_" not in e and "  " not in e for e in entries)
    keys = [normalise(e) for e in entries]
    assert len(set(keys)) == len(keys)


def test_open_semantics_spans_the_coop_suite():
    entries = {normalise(e) for e in load_vocabulary("open_semantics")}
    # one class name from each of the eleven datasets, as CLIP names them
    for name in ("goldfish", "accordion", "Abyssinian", "Acura RL Sedan 2012", "pink primrose",
                 "apple pie", "707-320", "abbey", "banded", "permanent crop land",
                 "Apply Eye Makeup"):
        assert normalise(name) in entries


def test_visual_concepts_cover_attributes_objects_and_scenes():
    entries = {normalise(e) for e in load_vocabulary("visual_concepts")}
    for concept in ("red", "wooden", "striped", "round", "honeycombed", "wheel", "dog",
                    "airfield"):
        assert concept in entries


def test_vocabularies_match_the_sources_file():
    from importlib import resources

    sources = resources.files("hf_zsl.vocabularies").joinpath("SOURCES.md").read_text()
    for name in VOCABULARIES:
        assert f"{name}.txt — {len(load_vocabulary(name))} entries" in sources


def test_unknown_vocabulary_is_refused():
    with pytest.raises(ValueError, match="open_semantics"):
        load_vocabulary("open-semantics")


def test_exclude_removes_targets_ignoring_case_underscores_and_spacing():
    names = ["Golden Retriever", "sea lion", "tabby cat", "dog"]
    assert exclude(names, ["golden_retriever", "Sea  Lion"]) == ["tabby cat", "dog"]
    assert exclude(names, []) == names
    kept = exclude(load_vocabulary("open_semantics"), ["goldfish", "ABBEY"])
    assert len(kept) == len(load_vocabulary("open_semantics")) - 2
