"""The substances vocabulary: any name a report uses, resolved to one canonical substance.

Reports arrive with names as people type them ("N-pyrrolidino protonitazene", "metonitazine",
"MDMA HCl"). Alerts, clusters and the red list need one name per substance, but a wrong guess
is worse than no guess: a nitazene filed as a different nitazene, or PMA filed as PMMA, would
send the wrong warning. So names are matched exactly after normalising, then through the
synonyms in the data file, and only then, cautiously, by spelling distance. Anything else is
kept as written and marked unknown: never dropped, never an error.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

DRUG_CLASSES: tuple[str, ...] = (
    "opioid",
    "nitazene",
    "fentanyl_analogue",
    "benzodiazepine",
    "designer_benzodiazepine",
    "synthetic_cannabinoid",
    "stimulant",
    "cathinone",
    "dissociative",
    "psychedelic",
    "sedative",
    "veterinary_sedative",
    "adulterant",
    "cut",
    "cannabinoid",
    "other",
)

How = Literal["exact", "synonym", "fuzzy", "unknown"]
_HOW_RANK: dict[How, int] = {"exact": 0, "synonym": 1, "fuzzy": 2, "unknown": 3}

# Greek letters survive NFKC, and chemists write alpha-PVP and delta-9-THC with them as often
# as spelled out. (Escapes, because a Greek alpha looks like a Latin "a".)
_GREEK = {"\u03b1": "alpha", "\u03b2": "beta", "\u03b3": "gamma", "\u03b4": "delta"}
# A salt or form suffix names the same active substance, so "MDMA HCl" is MDMA. Only trailing
# words are dropped: "acetate" and the like are left alone because esters are other substances.
_SALT_WORDS = frozenset(
    {
        "hcl",
        "2hcl",
        "hydrochloride",
        "dihydrochloride",
        "hbr",
        "hydrobromide",
        "citrate",
        "base",
        "freebase",
        "sulfate",
        "sulphate",
        "phosphate",
        "tartrate",
        "bitartrate",
        "fumarate",
        "hemifumarate",
        "maleate",
        "mesylate",
        "salt",
    }
)
_BRACKETED = re.compile(r"[(\[]([^()\[\]]*)[)\]]")

# Typos are only corrected in names long enough for one slip not to make another word.
_FUZZY_MIN_LENGTH = 6
_FUZZY_WIDE_LENGTH = 10


def normalise_name(raw: str) -> str:
    """A comparable form of a substance name: folded case, words split on any punctuation.

    `-`, `_`, spaces, brackets and other punctuation all separate words the same way, and a
    trailing salt or form ("hcl", "hydrochloride", "citrate", "base") is dropped, so
    "N-Pyrrolidino_Protonitazene (HCl)" and "n pyrrolidino-protonitazene" agree.
    """
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", raw).casefold())
    for letter, spelled in _GREEK.items():
        text = text.replace(letter, spelled)
    words = "".join(ch if ch.isalnum() else " " for ch in text).split()
    while len(words) > 1:
        if len(words) > 2 and words[-2:] == ["free", "base"]:
            del words[-2:]
        elif words[-1] in _SALT_WORDS:
            words.pop()
        else:
            break
    return " ".join(words)


def _key(raw: str) -> str:
    # Word breaks are dropped too: "3-MMC", "3 MMC" and "3MMC" are all written in the wild.
    return normalise_name(raw).replace(" ", "")


def _fuzzy_limit(length: int) -> int:
    if length >= _FUZZY_WIDE_LENGTH:
        return 2
    if length >= _FUZZY_MIN_LENGTH:
        return 1
    return 0


def _distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance, capped at `limit + 1`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                best = min(best, before[j - 2] + 1)
            current[j] = best
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return min(previous[-1], limit + 1)


@dataclass(frozen=True)
class SubstanceEntry:
    """One canonical substance and every other name it goes by."""

    name: str
    drug_class: str
    red_list: bool = False
    synonyms: tuple[str, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        # Callers may pass a list; a tuple keeps the entry hashable and truly frozen.
        object.__setattr__(self, "synonyms", tuple(self.synonyms))
        if not _key(self.name):
            raise ValueError(f"substance name {self.name!r} has no letters or digits")
        if self.drug_class not in DRUG_CLASSES:
            allowed = ", ".join(DRUG_CLASSES)
            raise ValueError(
                f"{self.name!r} has class {self.drug_class!r}; it must be one of: {allowed}"
            )
        for synonym in self.synonyms:
            if not _key(synonym):
                raise ValueError(f"{self.name!r} has a synonym with no letters or digits")

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> SubstanceEntry:
        name = item.get("name")
        if not isinstance(name, str):
            raise ValueError(f"substance entry {item!r} has no name")
        drug_class = item.get("class")
        red_list = item.get("red_list", False)
        synonyms = item.get("synonyms", [])
        note = item.get("note", "")
        if not isinstance(drug_class, str):
            raise ValueError(f"{name!r} has no class")
        if not isinstance(red_list, bool):
            raise ValueError(f"{name!r}: red_list must be true or false")
        if not isinstance(synonyms, list) or not all(isinstance(s, str) for s in synonyms):
            raise ValueError(f"{name!r}: synonyms must be a list of names")
        if not isinstance(note, str):
            raise ValueError(f"{name!r}: note must be text")
        return cls(name, drug_class, red_list, tuple(synonyms), note)


@dataclass(frozen=True)
class Match:
    """What a written name was resolved to; `canonical` is None when it is not known."""

    written: str
    canonical: str | None
    drug_class: str | None
    red_list: bool
    known: bool
    how: How

    @classmethod
    def of(cls, written: str, entry: SubstanceEntry, how: How) -> Match:
        return cls(written, entry.name, entry.drug_class, entry.red_list, True, how)

    @classmethod
    def unknown(cls, written: str) -> Match:
        return cls(written, None, None, False, False, "unknown")


class Vocabulary:
    """Canonical substances and their names; immutable once built (`extended` makes a new one).

    Building raises ValueError when one name would mean two substances.
    """

    __slots__ = ("_by_length", "_entries", "_index", "_radius")

    def __init__(self, entries: Iterable[SubstanceEntry]) -> None:
        self._entries: tuple[SubstanceEntry, ...] = tuple(entries)
        self._index: dict[str, tuple[SubstanceEntry, How]] = {}
        for entry in self._entries:
            self._add(entry.name, entry, "exact")
        for entry in self._entries:
            for synonym in entry.synonyms:
                self._add(synonym, entry, "synonym")
        self._by_length: dict[int, list[tuple[str, SubstanceEntry]]] = {}
        for key, (entry, _) in self._index.items():
            self._by_length.setdefault(len(key), []).append((key, entry))
        # How far a typo of each name may stray; worked out on first use, since most
        # lookups are exact and the all-pairs work would slow every start-up.
        self._radius: dict[str, int] = {}

    def _add(self, name: str, entry: SubstanceEntry, how: How) -> None:
        key = _key(name)
        held = self._index.get(key)
        if held is None:
            self._index[key] = (entry, how)
        elif held[0].name != entry.name:
            raise ValueError(
                f"{name!r} would mean both {held[0].name!r} and {entry.name!r}; "
                "a name must belong to one substance"
            )
        elif how == "exact" and held[1] != "exact":
            raise ValueError(f"two substances are both called {entry.name!r}")

    @classmethod
    def load_default(cls) -> Vocabulary:
        """The vocabulary shipped in ldis/domain/data/substances.json (read once per process)."""
        return _default_vocabulary()

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("substances"), list):
            raise ValueError('substances data must be an object with a "substances" list')
        return cls(SubstanceEntry.from_json(item) for item in data["substances"])

    @property
    def entries(self) -> tuple[SubstanceEntry, ...]:
        return self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, raw: str) -> Match:
        """Resolve one written name. Never raises; unknown names come back as written."""
        written = raw.strip()
        found = self._resolve(written)
        if found is None:
            found = self._resolve_bracketed(written)
        if found is None:
            return Match.unknown(written)
        entry, how = found
        return Match.of(written, entry, how)

    def lookup_many(self, names: Iterable[str]) -> list[Match]:
        return [self.lookup(name) for name in names]

    def red_list_names(self) -> list[str]:
        """Canonical names of red-list substances, sorted case-insensitively."""
        return sorted((e.name for e in self._entries if e.red_list), key=str.casefold)

    def extended(self, extra: Iterable[SubstanceEntry]) -> Vocabulary:
        """A new vocabulary with admin additions.

        An addition whose name is already known (as a canonical name or a synonym) adds its
        synonyms to that substance; otherwise it is a new substance. A synonym already meaning
        another substance is a ValueError naming both. An addition can put a known substance
        on the red list but never take it off: lowering a warning is a reviewed data change.
        """
        entries: dict[str, SubstanceEntry] = {e.name: e for e in self._entries}
        owner: dict[str, str] = {key: entry.name for key, (entry, _) in self._index.items()}
        for addition in extra:
            target_name = owner.get(_key(addition.name))
            if target_name is None:
                target = SubstanceEntry(
                    addition.name, addition.drug_class, addition.red_list, (), addition.note
                )
                owner[_key(addition.name)] = addition.name
                names = list(addition.synonyms)
            else:
                target = entries[target_name]
                if addition.drug_class != target.drug_class:
                    raise ValueError(
                        f"{addition.name!r} is already known as {target.name!r} "
                        f"({target.drug_class}), not {addition.drug_class}"
                    )
                names = [addition.name, *addition.synonyms]
            synonyms = list(target.synonyms)
            for name in names:
                holder = owner.get(_key(name))
                if holder is not None and holder != target.name:
                    raise ValueError(
                        f"synonym {name!r} already means {holder!r}; it cannot also mean "
                        f"{target.name!r}"
                    )
                if holder is None:
                    owner[_key(name)] = target.name
                    synonyms.append(name)
            entries[target.name] = SubstanceEntry(
                target.name,
                target.drug_class,
                target.red_list or addition.red_list,
                tuple(synonyms),
                target.note or addition.note,
            )
        return Vocabulary(entries.values())

    def _resolve(self, written: str) -> tuple[SubstanceEntry, How] | None:
        key = _key(written)
        if not key:
            return None
        held = self._index.get(key)
        if held is not None:
            return held
        return self._fuzzy(key)

    def _fuzzy(self, key: str) -> tuple[SubstanceEntry, How] | None:
        if len(key) < _FUZZY_MIN_LENGTH:
            return None
        near: dict[str, SubstanceEntry] = {}
        for length in range(len(key) - 2, len(key) + 3):
            for known, entry in self._by_length.get(length, ()):
                limit = _fuzzy_limit(len(known))
                if limit == 0:
                    continue
                distance = _distance(key, known, limit)
                if distance <= limit and distance <= self._radius_of(known, entry):
                    near[entry.name] = entry
        # Two candidates cannot both be in reach by construction; if they ever are, refuse.
        if len(near) != 1:
            return None
        return next(iter(near.values())), "fuzzy"

    def _radius_of(self, key: str, entry: SubstanceEntry) -> int:
        """How many edits from `key` a typo may be and still surely mean this substance.

        Less than half the distance to the nearest name of any *other* substance: then no
        typo is in reach of two substances, so "etonitazene" never drifts to "metonitazene"
        (one letter apart, so neither gets any fuzzy reach at all).
        """
        radius = self._radius.get(key)
        if radius is not None:
            return radius
        limit = _fuzzy_limit(len(key))
        reach = 2 * limit
        gap = reach + 1
        for length in range(len(key) - reach, len(key) + reach + 1):
            for other, other_entry in self._by_length.get(length, ()):
                if other_entry.name != entry.name:
                    gap = min(gap, _distance(key, other, reach))
        radius = min(limit, (gap - 1) // 2)
        self._radius[key] = radius
        return radius

    def _resolve_bracketed(self, written: str) -> tuple[SubstanceEntry, How] | None:
        # "N-pyrrolidino protonitazene (protonitazepyne)": accept when every part is known and
        # all name the same substance; "heroin (fentanyl)" names two, so it stays unknown.
        inner = _BRACKETED.findall(written)
        if not inner:
            return None
        parts = [part for part in [_BRACKETED.sub(" ", written), *inner] if _key(part)]
        found = [self._resolve(part) for part in parts]
        resolved = [item for item in found if item is not None]
        if not resolved or len(resolved) != len(found):
            return None
        if len({entry.name for entry, _ in resolved}) != 1:
            return None
        worst = max((how for _, how in resolved), key=_HOW_RANK.__getitem__)
        return resolved[0][0], "fuzzy" if worst == "fuzzy" else "synonym"


@cache
def _default_vocabulary() -> Vocabulary:
    text = resources.files("ldis.domain.data").joinpath("substances.json").read_text("utf-8")
    return Vocabulary.from_json(text)
