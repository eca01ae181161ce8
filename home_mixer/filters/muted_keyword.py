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


def tokens(text: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(unicodedata.normalize("NFKC", text).casefold()))


class KeywordMatcher:
    def __init__(self, keywords: list[str] | tuple[str, ...]) -> None:
        self.phrases = [t for t in (tokens(k) for k in keywords) if t]

    def matches(self, text: str) -> bool:
        words = tokens(text)
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
        return np.fromiter((not matcher.matches(text) for text in candidates["text"].tolist()),
                           dtype=bool, count=len(candidates))
