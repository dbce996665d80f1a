"""Hot terms (热词) of a period: texts segmented with jieba, stop words removed, counted per text.

What is counted is a capped sample, not every item: the newest ``SAMPLE_CAP`` texts of the period
(title plus the first ``CONTENT_CHARS`` characters of the content). Segmenting Chinese costs about a
millisecond per hundred characters, so a whole month of a city's items would take minutes; the newest
few hundred show what people are talking about now, which is what the panel is for. Each text's terms
are kept in a bounded cache by text id and fingerprint, so a dashboard refresh segments only what is new.
A term counts once per text that contains it (document frequency): one long letter repeating a word
does not make it hot.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

SAMPLE_CAP = 300
CONTENT_CHARS = 300
CACHE_SIZE = 5000
STOPWORDS_FILE = "stopwords.txt"
_BUNDLED = Path(__file__).with_name(STOPWORDS_FILE)
# A term worth showing: two or more characters, with a Chinese character or a letter; never a number
# (phone, ID and work-order numbers must not become "hot terms").
_HAN = re.compile(r"[\u4e00-\u9fff]")
_WORD = re.compile(r"^[A-Za-z][A-Za-z0-9-]+$")
# Nor an amount written in Chinese numerals (三个, 一周, 两天, 十多年, 半个月): jieba keeps these as words,
# and they top the chart without saying what people write about.
_NUMERALS = "零〇一二三四五六七八九十百千万两几半多余数"
_AMOUNT = re.compile(rf"^[{_NUMERALS}]+(?:个月|小时|分钟|[个天周年月日次名位件条元块岁多余])*$")


@dataclass(frozen=True)
class Text:
    """One text of the sample: a stable key (item id + fingerprint) and its words."""

    key: str
    text: str


def read_stopwords(path: Path) -> set[str]:
    """The words of a stop-word file: one a line, ``#`` starts a comment."""
    if not path.exists():
        return set()
    words = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        word = line.split("#", 1)[0].strip()
        if word:
            words.add(word)
    return words


class HotTerms:
    """Stop words, a word cutter (the process's jieba tokenizer), and a cache of texts' terms."""

    def __init__(self, cut: Callable[[str], Iterable[str]], stopwords: Iterable[str] = ()) -> None:
        self.stopwords = read_stopwords(_BUNDLED) | set(stopwords)
        # The gazetteer's tokenizer (service.items.places): jieba's dictionary plus the configured place
        # names, loaded once per process (each jieba tokenizer costs a second and tens of MB).
        self._cut = cut
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, frozenset[str]] = OrderedDict()

    def _keep(self, token: str) -> bool:
        token = token.strip()
        if len(token) < 2 or token in self.stopwords or _AMOUNT.match(token):
            return False
        return bool(_HAN.search(token) or _WORD.match(token))

    def terms_of(self, text: str) -> frozenset[str]:
        """The distinct terms of one text."""
        return frozenset(t.strip() for t in self._cut(text) if self._keep(t))

    def _cached(self, item: Text) -> frozenset[str]:
        with self._lock:
            found = self._cache.get(item.key)
            if found is not None:
                self._cache.move_to_end(item.key)
                return found
        terms = self.terms_of(item.text)
        with self._lock:
            self._cache[item.key] = terms
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return terms

    def top(self, texts: Iterable[Text], size: int = 30) -> list[tuple[str, int]]:
        """The ``size`` terms found in the most texts, with how many texts contain each."""
        counts: Counter[str] = Counter()
        for item in texts:
            counts.update(self._cached(item))
        # Ties in a stable order (by term) so the panel does not reshuffle between refreshes.
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]


def sample_text(title: str, content: str) -> str:
    """What of one item is segmented: its title and the start of its content."""
    return f"{title}\n{(content or '')[:CONTENT_CHARS]}"
