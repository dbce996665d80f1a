"""Place names in item text (district, town/street, community/village, road, estate), found with jieba.

jieba segments the text; a user dictionary holds the regions of ``departments.yaml`` rules and the
optional ``config/places.txt`` (one name a line, ``#`` comments), so local names come out whole. A place
is a dictionary word, or a word ending in a place suffix (河西区), or a word followed by a suffix word
(文昌 + 路, 阳光 + 花园 + 小区). Repost detection uses places to keep apart "the same complaint about
another estate"; related-event suggestions and the dashboard's 地域分布 use them too.
"""

from __future__ import annotations

import hashlib
import logging
import marshal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from service.files import atomic_path
from service.rules.config import DEPARTMENTS_FILE, current_departments

if TYPE_CHECKING:
    import jieba

PLACES_FILE = "places.txt"


def _jieba() -> ModuleType:
    """jieba, imported when a text is first segmented. Most crawls never compare two texts closely enough to
    ask for places, and importing jieba (which imports pkg_resources) cost every crawl process ~0.3 s CPU."""
    import jieba  # tests/foundation/test_architecture.py allows this one import inside a function

    return jieba


# Suffix -> level. Longer suffixes are tried first.
_SUFFIXES: dict[str, str] = {
    "自治县": "district", "新区": "district", "开发区": "district", "区": "district", "县": "district",
    "街道": "town", "镇": "town", "乡": "town",
    "社区": "community", "村": "community", "居委会": "community",
    "大道": "road", "大街": "road", "路": "road", "街": "road", "巷": "road", "胡同": "road",
    "小区": "estate", "花园": "estate", "家园": "estate", "新村": "estate", "华庭": "estate", "华府": "estate",
    "公寓": "estate", "苑": "estate", "园区": "estate", "广场": "estate",
}  # fmt: skip
# Words that are not the name part of a place even when a suffix follows (该小区, 所在社区, 附近路段).
_NOT_NAMES_TEXT = (
    "该 此 这 那 本 各 每 全 整个 这个 那个 所在 附近 周边 辖区 我们 他们 小区 社区 一个 所有 多个 城区 市区 "
    "老旧 新建 附近的 马 道 公 一条 这条 沿 多条 两条 地区 农村 城乡 乡村 山区 景区 园 学 校 社 街 镇 村 "
    "区县 各区 全区 全县 全市 本市 本区 本县 城 市 省 县 区 乡 路 进 出 上 下 回 到 在 从 往 向 去 "
    "行政 示范 公交 化工 健身 城中 美丽 文明 和谐 平安 智慧 工业 产业 商业"
)
_NOT_NAMES = frozenset(_NOT_NAMES_TEXT.split())
_LEVEL_ORDER = ("district", "town", "community", "road", "estate")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Place:
    name: str
    level: str  # district | town | community | road | estate


_MAX_SUFFIX = max(len(s) for s in _SUFFIXES)


def _suffix(word: str) -> str | None:
    # Longest first, by slicing: this runs for every token of every compared text.
    for size in range(min(_MAX_SUFFIX, len(word)), 0, -1):
        if word[-size:] in _SUFFIXES:
            return word[-size:]
    return None


# Time words and verbs jieba keeps whole that a suffix may follow (上个月小区, 近年来小区, 一下社区).
_NOT_NAME_CHARS = set("月年日来了过满下着设查")


def _is_name(word: str) -> bool:
    return (
        len(word) >= 2
        and word not in _NOT_NAMES
        and not (set(word) & _NOT_NAME_CHARS)
        and all("\u4e00" <= ch <= "\u9fff" for ch in word)
    )


# Characters that never start or end a place name when jieba leaves them single (的, 在…).
_STOP_CHARS = set(
    "的了在是和与及或也都就还又把被给对向从到往于为之其这那该此每各个位来去上下里外中内前后有无不没很更最已将要会能可"
)


def _name_before(tokens: list[str], i: int) -> str | None:
    """The name part before the suffix word at ``i``: one word of 2+ characters, or two single characters."""
    previous = tokens[i - 1]
    if len(previous) >= 2:
        return previous if _is_name(previous) else None
    if i >= 2 and len(tokens[i - 2]) == 1:
        pair = tokens[i - 2] + previous
        if all("\u4e00" <= ch <= "\u9fff" and ch not in _STOP_CHARS for ch in pair):
            return pair
    return None


# The dictionary with the place names added, kept in the data dir (``keep_dir``) under a digest of what it is
# made of: jieba's version and dictionary file, the given words, and the bytes of departments.yaml and
# places.txt. A restart loads it in one read instead of parsing departments.yaml (seconds with 10k rules)
# and adding each name; a changed file or dictionary gives another digest, so a stale copy is never read.
_KEPT_FORMAT = b"places-1"
_KEPT_GLOB = "places.*.marshal"


def _dictionary_file() -> Path:
    segmenter = _jieba()
    return Path(str(segmenter.__file__)).parent / segmenter.DEFAULT_DICT_NAME


def _kept_digest(words: set[str], config_dir: Path | None) -> str:
    digest = hashlib.sha256(_KEPT_FORMAT)
    stat = _dictionary_file().stat()
    digest.update(f"\0{_jieba().__version__}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    digest.update("\n".join(sorted(words)).encode("utf-8"))
    for name in (DEPARTMENTS_FILE, PLACES_FILE):
        digest.update(b"\0" + name.encode())
        if config_dir is not None:
            try:
                digest.update(b"\0" + (config_dir / name).read_bytes())
            except FileNotFoundError:
                digest.update(b"\0missing")
    return digest.hexdigest()


class Gazetteer:
    """A jieba tokenizer with the configured place names; ``extract`` finds places in a text.

    With ``keep_dir`` (``settings.data_path(KEEP_DIR)``) the built dictionary is kept there and a later
    process with the same dictionary, words and config files loads it instead of building it.
    """

    def __init__(
        self,
        words: list[str] | tuple[str, ...] = (),
        config_dir: Path | None = None,
        keep_dir: Path | None = None,
    ) -> None:
        self.words = {w.strip() for w in words if w and w.strip()}
        # Read when first needed: most crawls never compare two texts closely enough to ask for places,
        # and departments.yaml with thousands of rules takes seconds to parse.
        self._config_dir = config_dir
        self._keep_dir = keep_dir
        self._tokenizer: jieba.Tokenizer = None  # made when the dictionary is loaded (``_init``)
        self._lock = threading.Lock()
        self._ready = False
        # Where the dictionary came from at the last load: "kept" (the data dir's copy) or "built".
        self.loaded_from: str | None = None

    def prepare(self) -> None:
        """Load the dictionary now (the server does it in the background at start, not in a first request)."""
        if not self._ready:
            self._init()

    def _init(self) -> None:
        # jieba builds its prefix dictionary lazily (about a second); do it once, not per call.
        with self._lock:
            if self._ready:
                return
            segmenter = _jieba()
            logging.getLogger("jieba").setLevel(logging.WARNING)
            segmenter.setLogLevel(logging.WARNING)
            tokenizer = self._tokenizer = segmenter.Tokenizer()
            kept = None
            if self._keep_dir is not None:
                kept = self._keep_dir / f"places.{_kept_digest(self.words, self._config_dir)}.marshal"
                if self._load_kept(kept, tokenizer):
                    self._ready, self.loaded_from = True, "kept"
                    return
            if self._config_dir is not None:
                self.words |= {w.strip() for w in config_words(self._config_dir) if w and w.strip()}
            tokenizer.initialize()
            for word in self.words:
                tokenizer.add_word(word, freq=100_000, tag="ns")
            if kept is not None:
                self._keep(kept, tokenizer)
            self._ready, self.loaded_from = True, "built"

    def _load_kept(self, path: Path, tokenizer: jieba.Tokenizer) -> bool:
        try:
            data = marshal.loads(path.read_bytes())  # noqa: S302 - written by _keep, in the service's data dir
            freq, total, tags, words = data
        except (OSError, EOFError, ValueError, TypeError):
            return False  # not kept yet, or unreadable: build it
        tokenizer.FREQ, tokenizer.total, tokenizer.user_word_tag_tab = freq, total, tags
        tokenizer.initialized = True
        self.words = set(words)
        return True

    def _keep(self, path: Path, tokenizer: jieba.Tokenizer) -> None:
        try:
            blob = marshal.dumps((tokenizer.FREQ, tokenizer.total, tokenizer.user_word_tag_tab, sorted(self.words)))
            path.parent.mkdir(parents=True, exist_ok=True)
            for old in path.parent.glob(_KEPT_GLOB):
                old.unlink(missing_ok=True)
            with atomic_path(path) as partial:
                partial.write_bytes(blob)
        except (OSError, ValueError):
            logger.debug("地名词典未缓存到 %s", path.parent)

    def cut(self, text: str) -> list[str]:
        """The words of a text (jieba with the configured place names, no HMM), for other counts."""
        if not self._ready:
            self._init()
        return list(self._tokenizer.cut(text or "", HMM=False))

    def extract(self, text: str) -> list[Place]:
        """Places in order of first appearance, each once."""
        if not self._ready:
            self._init()
        # No HMM: it glues unknown neighbours into false words (上个月小区); unknown names come out as
        # single characters and are joined below.
        # Spaces and punctuation stay tokens: a name never reaches across them (a headline's last word
        # and the body's first word are not one place).
        tokens = list(self._tokenizer.cut(text or "", HMM=False))
        found: dict[str, Place] = {}
        i = 0
        while i < len(tokens):
            token = tokens[i]
            name: str | None = None
            level: str | None = None
            if token in self.words:
                name, suffix = token, _suffix(token)
                level = _SUFFIXES[suffix] if suffix else "district"
            else:
                suffix = _suffix(token)
                if suffix and token != suffix and _is_name(token[: -len(suffix)] or "x") and len(token) >= 3:
                    name, level = token, _SUFFIXES[suffix]
                elif token in _SUFFIXES and i > 0:
                    previous = _name_before(tokens, i)
                    if previous:
                        found.pop(previous, None)
                        name, level = previous + token, _SUFFIXES[token]
            if name is not None and level is not None:
                # 阳光 + 花园 + 小区: a following suffix word makes the same place longer.
                while i + 1 < len(tokens) and tokens[i + 1] in _SUFFIXES and tokens[i + 1] != "区":
                    i += 1
                    name += tokens[i]
                    level = _SUFFIXES[tokens[i]]
                found.setdefault(name, Place(name, level))
            i += 1
        return list(found.values())

    def names(self, text: str) -> frozenset[tuple[str, str]]:
        """``(level, name)`` of the places of a text, estate suffixes folded (阳光花园小区 = 阳光花园)."""
        out = set()
        for place in self.extract(text):
            name = place.name
            if name.endswith("小区") and len(name) > 4:
                name = name[:-2]
            out.add((place.level, name))
        return frozenset(out)


def config_words(config_dir: Path) -> list[str]:
    """Regions of the rules in departments.yaml plus the lines of places.txt in the config dir."""
    words: list[str] = []
    try:
        for department in current_departments(config_dir).departments:
            for rule in department.rules:
                words += rule.regions
    except Exception as exc:  # a broken departments.yaml is reported where it is loaded, not here
        logger.debug("未从 departments.yaml 读到地域词：%s", exc)
    path = config_dir / PLACES_FILE
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                words.append(line)
    return words


_default: Gazetteer | None = None
_default_lock = threading.Lock()


def configure(config_dir: Path | None, keep_dir: Path | None = None) -> Gazetteer:
    """Build the process's gazetteer from a config dir (called at start-up of the service and of crawls);
    the config dir's names are read when places are first asked for; ``keep_dir`` keeps the built dictionary."""
    global _default
    gazetteer = Gazetteer(config_dir=config_dir, keep_dir=keep_dir)
    with _default_lock:
        _default = gazetteer
    return gazetteer


def gazetteer() -> Gazetteer:
    """The process's gazetteer; without ``configure`` one with jieba's own dictionary only."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Gazetteer()
        return _default


def region_of(places: list[Place]) -> str | None:
    """The broadest place named (a district before a town before a road), for the 地域分布 view."""
    for level in _LEVEL_ORDER:
        for place in places:
            if place.level == level:
                return place.name
    return None
