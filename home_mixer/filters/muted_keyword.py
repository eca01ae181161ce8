"""MutedKeyword: remove posts whose text contains a muted keyword or phrase: case-insensitive
(Unicode case folding after NFKC normalisation, so "STRASSE" mutes "straße" and a
full-width "ＡＢＣ" mutes "abc"), matched on whole words, a phrase as consecutive words.
Without the user's features the keywords are unknown, and every candidate is removed."""
from __future__ import annotations

import re
import unicodedata

import numpy as np

from candidate_pipeline import Filter
from home_mixer.candidates import PostBatch
from home_mixer.query import ScoredPostsQuery

# Words (Unicode letters/digits/underscore) and single other visible characters ("#", emoji),
# so "#tag" is the two tokens "#", "tag" in both the keyword and the text.
_TOKEN = re.compile(r"\w+|[^\w\s]")


def folded(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def tokens(text: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(folded(text)))


class KeywordMatcher:
    def __init__(self, keywords: list[str] | tuple[str, ...]) -> None:
        self.phrases = [t for t in (tokens(k) for k in keywords) if t]
        # A phrase can only match a text that contains its longest token as a substring: a
        # cheap test that spares most texts the tokenizing.
        self.needles = [max(phrase, key=len) for phrase in self.phrases]

    def matches(self, text: str) -> bool:
        text = folded(text)
        if not any(needle in text for needle in self.needles):
            return False
        return self._matches_folded(text)

    def matches_many(self, texts: list[str]) -> np.ndarray:
        """`matches` for each text, folding them all as one string (NFKC and case folding do
        not cross the NUL separators) and tokenizing only the texts a needle occurs in."""
        hit = np.zeros(len(texts), dtype=bool)
        if not texts or not self.phrases:
            return hit
        joined = folded("\x00".join(texts))
        parts = joined.split("\x00")
        if len(parts) != len(texts):  # a text with its own NUL: one by one
            return np.fromiter(map(self.matches, texts), dtype=bool, count=len(texts))
        starts = np.cumsum([0, *(len(part) + 1 for part in parts[:-1])])
        rows: set[int] = set()
        for needle in self.needles:
            at = joined.find(needle)
            while at != -1:
                row = int(np.searchsorted(starts, at, side="right")) - 1
                rows.add(row)
                next_row = row + 1
                at = joined.find(needle, int(starts[next_row])) if next_row < len(parts) else -1
        for row in rows:
            hit[row] = self._matches_folded(parts[row])
        return hit

    def _matches_folded(self, text: str) -> bool:
        words = tuple(_TOKEN.findall(text))
        for phrase in self.phrases:
            n = len(phrase)
            if any(words[i:i + n] == phrase for i in range(len(words) - n + 1)):
                return True
        return False


class MutedKeywordFilter(Filter[ScoredPostsQuery, PostBatch]):
    fail_closed = True
    reads = ("text",)

    def enable(self, query: ScoredPostsQuery) -> bool:
        return query.user_features is None or bool(query.user_features.muted_keywords)

    async def filter(self, query: ScoredPostsQuery, candidates: PostBatch) -> np.ndarray:
        if query.user_features is None:
            return np.zeros(len(candidates), dtype=bool)
        matcher = KeywordMatcher(query.features.muted_keywords)
        return ~matcher.matches_many(candidates["text"].tolist())
