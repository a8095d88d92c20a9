"""Substances vocabulary: one canonical name per substance, cautious typo correction, red list."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ldis.domain.substances import (
    DRUG_CLASSES,
    SubstanceEntry,
    Vocabulary,
    normalise_name,
)

VOCAB = Vocabulary.load_default()
ALL_NAMES = [
    (entry.name, name) for entry in VOCAB.entries for name in (entry.name, *entry.synonyms)
]


def canonical(raw: str) -> str | None:
    return VOCAB.lookup(raw).canonical


# --- normalising -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("N-pyrrolidino protonitazene", "n pyrrolidino-protonitazene"),
        ("N_Pyrrolidino  (Protonitazene)", "n-pyrrolidino protonitazene"),
        ("  Bromazolam ", "bromazolam"),
        ("MDMA HCl", "mdma"),
        ("cocaine hydrochloride", "cocaine"),
        ("ketamine (HCl)", "ketamine"),
        ("cocaine free base", "cocaine"),
        ("fentanyl citrate", "fentanyl"),
        ("\u03b1-PVP", "alpha-pvp"),  # Greek alpha
        ("\uff2d\uff24\uff2d\uff21", "mdma"),  # full-width letters, folded by NFKC
    ],
)
def test_normalise_name_treats_spellings_alike(left: str, right: str) -> None:
    assert normalise_name(left) == normalise_name(right)


def test_normalise_name_keeps_a_lone_salt_word_and_the_middle_of_names() -> None:
    assert normalise_name("base") == "base"
    assert normalise_name("HCl") == "hcl"
    assert normalise_name("boric acid") == "boric acid"


# --- the shipped data ----------------------------------------------------------------------


def test_shipped_data_is_consistent() -> None:
    text = resources.files("ldis.domain.data").joinpath("substances.json").read_text("utf-8")
    raw = json.loads(text)["substances"]
    assert len(raw) == len(VOCAB) >= 80
    assert len({item["name"] for item in raw}) == len(raw)
    for item in raw:
        assert item["class"] in DRUG_CLASSES, item["name"]


def test_every_name_resolves_to_exactly_its_own_substance() -> None:
    for entry_name, name in ALL_NAMES:
        match = VOCAB.lookup(name)
        assert match.canonical == entry_name, name
        assert match.how == ("exact" if name == entry_name else "synonym"), name


def test_shipped_synonyms_are_not_redundant() -> None:
    # A synonym that normalises to a name already listed is dead weight, and hides mistakes.
    for entry in VOCAB.entries:
        keys = [normalise_name(n).replace(" ", "") for n in (entry.name, *entry.synonyms)]
        assert len(keys) == len(set(keys)), entry.name


def test_red_list_classes_are_all_red_listed() -> None:
    red_classes = {
        "nitazene",
        "fentanyl_analogue",
        "designer_benzodiazepine",
        "synthetic_cannabinoid",
        "veterinary_sedative",
    }
    for entry in VOCAB.entries:
        if entry.drug_class in red_classes:
            assert entry.red_list, entry.name


def test_colliding_data_is_refused_naming_the_name() -> None:
    data = {
        "substances": [
            {"name": "etonitazene", "class": "nitazene", "red_list": True, "synonyms": ["eto"]},
            {"name": "ketamine", "class": "dissociative", "synonyms": ["ETO"]},
        ]
    }
    with pytest.raises(ValueError, match="'ETO' would mean both 'etonitazene' and 'ketamine'"):
        Vocabulary.from_json(json.dumps(data))


def test_unknown_class_is_refused() -> None:
    with pytest.raises(ValueError, match="must be one of"):
        SubstanceEntry("thing", "opiate")


def test_load_default_is_read_once() -> None:
    assert Vocabulary.load_default() is Vocabulary.load_default()


# --- lookups -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "protonitazepyne",
        "N-pyrrolidino protonitazene",
        "n pyrrolidino-protonitazene",
        "N-PYRROLIDINO PROTONITAZENE",
        "protonitazepine",
        "N-pyrrolidino protonitazene (protonitazepyne)",
    ],
)
def test_protonitazepyne_is_one_substance(written: str) -> None:
    match = VOCAB.lookup(written)
    assert match.canonical == "protonitazepyne"
    assert match.drug_class == "nitazene"
    assert match.red_list and match.known


@pytest.mark.parametrize(
    ("written", "expected", "how"),
    [
        ("metonitazine", "metonitazene", "synonym"),
        ("bromazolam ", "bromazolam", "exact"),
        ("mdma hcl", "MDMA", "exact"),
        ("n-ethylpentylone", "N-ethylpentylone", "exact"),
        ("ephylone", "N-ethylpentylone", "synonym"),
        ("etazene", "etodesnitazene", "synonym"),
        ("diamorphine", "heroin", "synonym"),
        ("crack", "cocaine", "synonym"),
        ("crack cocaine", "cocaine", "synonym"),
        ("3MMC", "3-MMC", "exact"),
        ("Δ9-THC", "THC", "synonym"),
        ("5f mdmb pica", "5F-MDMB-PICA", "exact"),
        ("MDMB4enPINACA", "MDMB-4en-PINACA", "exact"),
        # Typos reached only by spelling distance:
        ("fentanl", "fentanyl", "fuzzy"),
        ("xylazin", "xylazine", "fuzzy"),
        ("medetomidin", "medetomidine", "fuzzy"),
        ("desalkylgidazepan", "desalkylgidazepam", "fuzzy"),
        ("carfentanyll", "carfentanil", "fuzzy"),
        ("flualprazolan", "flualprazolam", "fuzzy"),
    ],
)
def test_spellings_and_misspellings(written: str, expected: str, how: str) -> None:
    match = VOCAB.lookup(written)
    assert (match.canonical, match.how) == (expected, how)
    assert match.written == written.strip()


@pytest.mark.parametrize(
    ("left", "right"),
    [("MDA", "MDMA"), ("PMA", "PMMA"), ("etonitazene", "metonitazene"), ("3-MMC", "4-MMC")],
)
def test_close_names_stay_apart(left: str, right: str) -> None:
    left_match, right_match = VOCAB.lookup(left), VOCAB.lookup(right)
    assert left_match.known and right_match.known
    assert left_match.canonical != right_match.canonical
    assert {left_match.how, right_match.how} <= {"exact", "synonym"}


@pytest.mark.parametrize(
    "written",
    [
        "MDAA",  # short names are exact only
        "PMMMA",
        "metonitazne",  # one slip from metonitazene, but metonitazene is one from etonitazene
        "etonitazepine",  # as near to etonitazepyne as to etonitazepipne
        "bromazepan",  # bromazepam (licensed) and bromazolam (red list) are two letters apart
        "cocane",
    ],
)
def test_ambiguous_typos_are_not_guessed(written: str) -> None:
    match = VOCAB.lookup(written)
    assert not match.known
    assert match.canonical is None


def test_typos_only_correct_to_the_substance_they_are_unambiguously_near() -> None:
    assert canonical("bromazolan") == "bromazolam"  # listed synonym
    assert canonical("bromazepan") is None


@pytest.mark.parametrize(
    "written", ["  brand-new-nitazene ", "", "   ", "heroin (fentanyl)", "???"]
)
def test_unknowns_are_kept_as_written(written: str) -> None:
    match = VOCAB.lookup(written)
    assert match.written == written.strip()
    assert (match.canonical, match.drug_class, match.red_list) == (None, None, False)
    assert (match.known, match.how) == (False, "unknown")


def test_lookup_many_keeps_order_and_unknowns() -> None:
    matches = VOCAB.lookup_many(["heroin", "mystery powder", "xylazine"])
    assert [m.canonical for m in matches] == ["heroin", None, "xylazine"]
    assert matches[1].written == "mystery powder"


@pytest.mark.parametrize(
    "written",
    [
        # nitazenes
        "metonitazene",
        "protonitazene",
        "isotonitazene",
        "N-desethyl isotonitazene",
        "etonitazene",
        "etodesnitazene",
        "butonitazene",
        "etonitazepyne",
        "metonitazepyne",
        "etonitazepipne",
        "ethyleneoxynitazene",
        # fentanyls
        "fentanyl",
        "carfentanil",
        "acetylfentanyl",
        # veterinary sedatives
        "xylazine",
        "medetomidine",
        # designer benzodiazepines
        "bromazolam",
        "flualprazolam",
        "etizolam",
        "flubromazolam",
        "clonazolam",
        "desalkylgidazepam",
        # synthetic cannabinoids
        "MDMB-4en-PINACA",
        "ADB-BUTINACA",
        "5F-MDMB-PICA",
        "MDMB-INACA",
        # named exceptions
        "PMMA",
        "PMA",
    ],
)
def test_red_list(written: str) -> None:
    match = VOCAB.lookup(written)
    assert match.known and match.red_list, written
    assert match.canonical in VOCAB.red_list_names()


@pytest.mark.parametrize(
    "written",
    ["heroin", "diazepam", "alprazolam", "MDMA", "MDA", "cocaine", "ketamine", "caffeine", "THC"],
)
def test_not_red_list(written: str) -> None:
    assert VOCAB.lookup(written).red_list is False


def test_classes_of_some_substances() -> None:
    assert VOCAB.lookup("xylazine").drug_class == "veterinary_sedative"
    assert VOCAB.lookup("mannitol").drug_class == "cut"
    assert VOCAB.lookup("levamisole").drug_class == "adulterant"
    assert VOCAB.lookup("bromazolam").drug_class == "designer_benzodiazepine"
    assert VOCAB.lookup("diazepam").drug_class == "benzodiazepine"
    assert VOCAB.lookup("mephedrone").drug_class == "cathinone"
    assert VOCAB.lookup("HHC").drug_class == "cannabinoid"


def test_red_list_names_are_sorted_canonicals() -> None:
    names = VOCAB.red_list_names()
    assert names == sorted(names, key=str.casefold)
    assert "protonitazepyne" in names and "N-pyrrolidino protonitazene" not in names
    assert "heroin" not in names


# --- admin additions -----------------------------------------------------------------------


def test_extended_adds_synonyms_to_an_existing_substance() -> None:
    extended = VOCAB.extended(
        [SubstanceEntry("protonitazepyne", "nitazene", True, ("pronitpyne", "proto-pyne"))]
    )
    assert extended.lookup("pronitpyne").canonical == "protonitazepyne"
    assert extended.lookup("Proto Pyne").how == "synonym"
    assert extended.lookup("N-pyrrolidino protonitazene").canonical == "protonitazepyne"
    assert VOCAB.lookup("pronitpyne").known is False  # the original is untouched
    assert len(extended) == len(VOCAB)


def test_extended_by_a_synonym_name_merges_into_its_substance() -> None:
    extended = VOCAB.extended([SubstanceEntry("etazene", "nitazene", True, ("etaz",))])
    assert extended.lookup("etaz").canonical == "etodesnitazene"


def test_extended_adds_new_substances() -> None:
    extended = VOCAB.extended(
        [SubstanceEntry("fluorobromazolam", "designer_benzodiazepine", True, ("F-bromazolam",))]
    )
    match = extended.lookup("f bromazolam")
    assert (match.canonical, match.red_list, match.how) == ("fluorobromazolam", True, "synonym")
    assert "fluorobromazolam" in extended.red_list_names()
    assert len(extended) == len(VOCAB) + 1


def test_extended_can_raise_but_not_lower_the_red_list() -> None:
    raised = VOCAB.extended([SubstanceEntry("ketamine", "dissociative", True)])
    assert raised.lookup("ketamine").red_list
    kept = VOCAB.extended([SubstanceEntry("fentanyl", "fentanyl_analogue", False, ("fenty",))])
    assert kept.lookup("fenty").red_list


def test_extended_refuses_a_synonym_of_another_substance() -> None:
    with pytest.raises(ValueError, match="'MDA' already means 'MDA'; it cannot also mean 'MDMA'"):
        VOCAB.extended([SubstanceEntry("MDMA", "stimulant", False, ("MDA",))])
    with pytest.raises(ValueError, match="'metonitazine' already means 'metonitazene'"):
        VOCAB.extended([SubstanceEntry("newnitazene", "nitazene", True, ("metonitazine",))])


def test_extended_refuses_reclassing() -> None:
    with pytest.raises(ValueError, match="already known as 'cocaine'"):
        VOCAB.extended([SubstanceEntry("crack", "cut")])


def test_extended_refuses_collisions_within_the_additions() -> None:
    with pytest.raises(ValueError, match="'ZZ 99' already means 'thing one'"):
        VOCAB.extended(
            [
                SubstanceEntry("thing one", "other", False, ("zz-99",)),
                SubstanceEntry("thing two", "other", False, ("ZZ 99",)),
            ]
        )


# --- properties ----------------------------------------------------------------------------


@given(st.text())
def test_lookup_never_raises_and_keeps_what_was_written(raw: str) -> None:
    match = VOCAB.lookup(raw)
    assert match.written == raw.strip()
    assert match.known == (match.canonical is not None)


@given(st.text())
def test_normalise_name_is_idempotent(raw: str) -> None:
    once = normalise_name(raw)
    assert normalise_name(once) == once


def _variant(name: str, draw_case: list[bool], separators: list[str]) -> str:
    chars = [c.upper() if up else c.lower() for c, up in zip(name, draw_case, strict=False)]
    chars += list(name[len(chars) :])
    out: list[str] = []
    for i, char in enumerate(chars):
        if char in " -_":
            out.append(separators[i % len(separators)])
        else:
            out.append(char)
    return "".join(out)


@given(
    st.sampled_from(ALL_NAMES),
    st.lists(st.booleans(), max_size=60),
    st.lists(st.sampled_from([" ", "-", "_", "  ", " - ", ""]), min_size=1, max_size=5),
    st.sampled_from(["", " ", "  ", "\t"]),
)
def test_any_name_in_any_case_and_spacing_resolves_to_its_own_substance(
    pair: tuple[str, str], cases: list[bool], separators: list[str], pad: str
) -> None:
    entry_name, name = pair
    written = pad + _variant(name, cases, separators) + pad
    assert canonical(written) == entry_name, written
