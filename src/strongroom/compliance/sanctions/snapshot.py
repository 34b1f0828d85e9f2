"""Pure helpers of the stored list snapshots: an Entry as JSON and back, a list's content
hash, the diff between two versions of one list, and the blocking keys (phonetic keys of name
tokens) the re-screening index is built from. No database here."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import jellyfish

from strongroom.compliance.sanctions.errors import DuplicateEntry
from strongroom.compliance.sanctions.index import name_keys
from strongroom.compliance.sanctions.match import tokens
from strongroom.compliance.sanctions.model import Entry, EntryKind, ListSource
from strongroom.compliance.sanctions.normalize import normalize

ADDED: Final = "added"
CHANGED: Final = "changed"
REMOVED: Final = "removed"

# Tokens shorter than this make no blocking key (initials, "al", "de": they match everyone).
BLOCKING_TOKEN_LENGTH_MIN: Final = 3


def entry_json(entry: Entry) -> str:
    return json.dumps(
        {
            "source": entry.source.value,
            "entry_id": entry.entry_id,
            "kind": entry.kind.value,
            "names": list(entry.names),
            "dates_of_birth": list(entry.dates_of_birth),
            "countries": list(entry.countries),
            "programs": list(entry.programs),
            "remarks": entry.remarks,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def entry_from_json(text: str) -> Entry:
    data: Mapping[str, Any] = json.loads(text)
    return Entry(
        source=ListSource(data["source"]),
        entry_id=data["entry_id"],
        kind=EntryKind(data["kind"]),
        names=tuple(data["names"]),
        dates_of_birth=tuple(data["dates_of_birth"]),
        countries=tuple(data["countries"]),
        programs=tuple(data["programs"]),
        remarks=data["remarks"],
    )


def content_hash(fingerprints: Mapping[str, str]) -> str:
    """A list version's identity: the SHA-256 of its (entry id, fingerprint) pairs in id
    order, so the same entries loaded from a file laid out differently are the same version."""
    digest = hashlib.sha256(b"strongroom sanctions list v1\0")
    for entry_id in sorted(fingerprints):
        digest.update(f"{entry_id}\x1f{fingerprints[entry_id]}\x1e".encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Diff:
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def counts(self) -> dict[str, int]:
        return {ADDED: len(self.added), CHANGED: len(self.changed), REMOVED: len(self.removed)}


def diff(previous: Mapping[str, str], current: Mapping[str, str]) -> Diff:
    """Entry ids added, changed (another fingerprint) and removed from `previous` to
    `current` (each a map of entry id to fingerprint), each sorted."""
    return Diff(
        tuple(sorted(current.keys() - previous.keys())),
        tuple(sorted(k for k in current.keys() & previous.keys() if current[k] != previous[k])),
        tuple(sorted(previous.keys() - current.keys())),
    )


def unique_entries(source: ListSource, entries: Sequence[Entry]) -> dict[str, Entry]:
    """By entry id. A list names each id once: one that names an id twice (a file edited by
    hand, a publisher's mistake) is refused whole (DuplicateEntry, naming the ids)."""
    out: dict[str, Entry] = {}
    twice: dict[str, None] = {}
    for entry in entries:
        if entry.entry_id in out:
            twice[entry.entry_id] = None
        out[entry.entry_id] = entry
    if twice:
        raise DuplicateEntry(source.value, sorted(twice))
    return out


def phonetic_keys(names: Iterable[str]) -> set[str]:
    """The blocking keys of a set of names: the candidate index's keys of each name
    (index.name_keys), and the Metaphone key of each token of at least
    BLOCKING_TOKEN_LENGTH_MIN letters, after the matcher's own normalisation (case,
    diacritics, transliteration). A subject and an entry that could match share one."""
    keys: set[str] = set()
    for name in names:
        # The candidate index's own keys too (every token, whatever its length, and the name
        # without spaces): a subject the matcher could find shares a key with the entry.
        keys.update(name_keys(normalize(name)))
        for token in tokens(name):
            if len(token) >= BLOCKING_TOKEN_LENGTH_MIN and not token.isdigit():
                key = jellyfish.metaphone(token)
                if key:
                    # Metaphone keeps a leading vowel as it is: Osama and Usama must meet.
                    keys.add("A" + key[1:] if key[0] in "AEIOU" else key)
    return keys
