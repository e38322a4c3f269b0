"""What both search backends are given: documents' text made ready, and queries parsed into terms.

Both backends see the same words, split here rather than by each backend's own parser (PostgreSQL's
keeps "photo.jpg" whole, FTS5 splits it): letters and digits, lower-cased, accents taken off (café is
cafe; the backends' own ``remove_diacritics`` and ``unaccent`` would agree, except on a few letters
such as ø and ł), separated by spaces. Runs of Chinese, Japanese or Korean
characters (written without spaces, so a tokenizer sees a whole sentence as one word) become their
single characters followed by their overlapping pairs: "東京タワー" is indexed as 東 京 タ ワ ー 東京 京タ
タワ ワー. A query of one such character matches the single ones; a longer run is searched as the
phrase of its pairs, so "京タワ" finds 東京タワー. Stemming (photos finds photo) is each backend's job.

A query is words, "quoted phrases" and nothing else: operators and punctuation a backend would read
as syntax are dropped, so no query can be a syntax error. The last word is a prefix when the query
does not end in a space (search as you type).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Han (with extensions), Hiragana, Katakana, Hangul syllables and jamo, CJK symbols' letters.
_CJK = (r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u1100-\u11ff\u3130-\u318f"
        r"\U00020000-\U0002fa1f")
_CJK_RUN = re.compile(f"[{_CJK}]+")
_WORD = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")  # letters and digits (underscores split words, as both backends do)
_PHRASE = re.compile(r'"([^"]*)"?')
MAX_TERMS = 16  # more words than this add nothing a person meant, and cost every backend
MAX_QUERY = 200


def _cjk_tokens(run: str) -> str:
    if len(run) == 1:
        return run
    return " ".join([*run, *(run[i:i + 2] for i in range(len(run) - 1))])


_LETTERS = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe", "ı": "i"})


def fold(text: str) -> str:
    """Lower case without accents: NFKD, combining marks dropped, case folded."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_LETTERS))
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def prepare(text: str | None) -> str:
    """A document's text as the backends index it: its words, folded, separated by spaces."""
    if not text:
        return ""
    words = _WORD.findall(fold(unicodedata.normalize("NFKC", text)))
    return " ".join(_cjk_tokens(word) if _CJK_RUN.fullmatch(word) else word for word in words)


@dataclass(frozen=True)
class Term:
    """One thing every match must contain: a word (``prefix``: or a word starting with it) or a
    phrase of words next to each other."""

    words: tuple[str, ...]
    prefix: bool = False


def _words(chunk: str) -> list[tuple[str, ...]]:
    """The words of a piece of query, a CJK run becoming the phrase of its pairs."""
    found: list[tuple[str, ...]] = []
    for word in _WORD.findall(chunk):
        if _CJK_RUN.fullmatch(word) and len(word) > 1:
            found.append(tuple(word[i:i + 2] for i in range(len(word) - 1)))
        else:
            found.append((word,))
    return found


def parse_query(query: str) -> list[Term]:
    """The terms of a query typed by a person (at most MAX_TERMS); [] when it has no words."""
    query = fold(unicodedata.normalize("NFKC", query or "")[:MAX_QUERY])
    terms: list[Term] = []
    position = 0
    for match in _PHRASE.finditer(query):
        terms.extend(Term(words) for words in _words(query[position:match.start()]))
        phrase = tuple(word for words in _words(match.group(1)) for word in words)
        if phrase:
            terms.append(Term(phrase))
        position = match.end()
    tail = _words(query[position:])
    terms.extend(Term(words) for words in tail)
    typing = bool(tail) and not query[-1:].isspace()
    if typing and len(terms[-1].words) == 1 and not _CJK_RUN.fullmatch(terms[-1].words[0]):
        terms[-1] = Term(terms[-1].words, prefix=True)
    return terms[:MAX_TERMS]
