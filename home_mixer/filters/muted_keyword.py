"""MutedKeyword: remove posts whose text contains a muted keyword or phrase: case-insensitive
(Unicode case folding after NFKC normalisation, so "STRASSE" mutes "straße" and a
full-width "ＡＢＣ" mutes "abc"), matched on whole words, a phrase as consecutive words.
Without the user's features the keywords are unknown, and every candidate is removed."""
from __future__ import annotations

import re
import unicodedata

from candidate_pipeline import Filter, FilterResult
from home_mixer.candidate import PostCandidate
from home_mixer.filters import split
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


class MutedKeywordFilter(Filter[ScoredPostsQuery, PostCandidate]):
    fail_closed = True

    def enable(self, query: ScoredPostsQuery) -> bool:
        return query.user_features is None or bool(query.user_features.muted_keywords)

    async def filter(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> FilterResult[PostCandidate]:
        if query.user_features is None:
            return FilterResult(kept=[], removed=list(candidates))
        matcher = KeywordMatcher(query.features.muted_keywords)
        return split(candidates, lambda c: not matcher.matches(c.text))
