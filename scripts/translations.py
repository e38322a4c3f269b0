"""Kiln's translation catalogues: extract, update and check (docs/translating.md).

    .venv/bin/python scripts/translations.py extract   # src/kiln/translations/messages.pot from the code
    .venv/bin/python scripts/translations.py update    # merge the template into every locale's .po
    .venv/bin/python scripts/translations.py init LL   # start a new locale
    .venv/bin/python scripts/translations.py check     # what CI runs (tests/test_translations.py)

Strings are found in Python (``_``, ``N_``, ``ngettext``, ``pgettext`` and the sentence given to any
``KilnError`` class), Jinja templates (``_()``, ``ngettext()``, ``{% trans %}``) and the web's JavaScript
(``gettext``, ``ngettext``); babel.cfg says which files are read.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import pkgutil
import re
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "src" / "kiln" / "translations"
TEMPLATE = TRANSLATIONS / "messages.pot"
# Locales that must translate every string (CI fails on a missing one); others may be partial.
COMPLETE = ("de", "es", "fr", "ar")


def error_classes() -> list[str]:
    """The name of every KilnError class: a sentence given to one is a msgid."""
    import kiln
    from kiln.errors import KilnError

    for module in pkgutil.walk_packages(kiln.__path__, "kiln."):
        if ".migrations" in module.name or module.name.endswith(("__main__", "_probe_child")):
            continue
        importlib.import_module(module.name)
    found: set[str] = set()
    pending = [KilnError]
    while pending:
        cls = pending.pop()
        found.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return sorted(found)


def extract(output: Path = TEMPLATE, warnings: list[str] | None = None) -> Path:
    args = ["pybabel", "-q", "extract", "-F", str(ROOT / "babel.cfg"), "-o", str(output), "--no-wrap",
            "--sort-by-file", "--project", "Kiln", "--version", "1", "--msgid-bugs-address", "",
            "--copyright-holder", "Kiln contributors", "--no-default-keywords"]
    keywords = ["_", "gettext", "ngettext:1,2", "N_", "Nn_:1,2", "pgettext:1c,2", "npgettext:1c,2,3", "translate:1",
                "translate_plural:1,2",
                *[f"{name}:1" for name in error_classes()]]
    for keyword in keywords:
        args += ["-k", keyword]
    args.append(str(ROOT))
    said = io.StringIO()
    with contextlib.redirect_stderr(said):
        CommandLineInterface().run(args)
    # e.g. an f-string given to a KilnError: it cannot be translated as written
    lines = [line.replace(f"{ROOT}/", "") for line in said.getvalue().splitlines() if "warning" in line]
    if warnings is not None:
        warnings.extend(lines)
    else:
        for line in lines:
            print(line, file=sys.stderr)
    _relative_locations(output)
    return output


def _relative_locations(path: Path) -> None:
    """Locations as paths from the repository root (pybabel writes what it was given)."""
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(f"#: {ROOT}/", "#: ").replace(f" {ROOT}/", " "), encoding="utf-8")


def update() -> None:
    CommandLineInterface().run(["pybabel", "-q", "update", "-i", str(TEMPLATE), "-d", str(TRANSLATIONS),
                                "--no-wrap", "--ignore-obsolete", "--no-fuzzy-matching"])


def init(locale: str) -> None:
    CommandLineInterface().run(["pybabel", "-q", "init", "-i", str(TEMPLATE), "-d", str(TRANSLATIONS),
                                "-l", locale, "--no-wrap"])


def load(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def locales() -> list[str]:
    return sorted(p.name for p in TRANSLATIONS.iterdir() if (p / "LC_MESSAGES" / "messages.po").is_file())


# Attributes whose values people read (or hear, from a screen reader).
SPOKEN_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "aria-description", "aria-valuetext", "label"}
LETTERS = re.compile(r"[^\W\d_]{2,}")  # two letters in a row: a word, not "·" or "×" or "%"
# A format or codec name written with a digit (AV1, MP3, H264): a name, not a word to translate.
CODE_NAME = re.compile(r"[A-Z]+[0-9][A-Z0-9]*")
# Elements whose text machines read, not people: Atom's <generator> names the software.
UNSPOKEN = ("script", "style", "generator")


class _TextFinder(HTMLParser):
    """Text and spoken attribute values in the literal parts of a template (outside {% trans %})."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in UNSPOKEN:
            self._skip += 1
        for name, value in attrs:
            if name in SPOKEN_ATTRIBUTES and value and LETTERS.search(value):
                self.found.append(f'{name}="{value}"')
        if tag == "input":
            kinds = dict(attrs)
            if kinds.get("type") in ("submit", "button", "reset") and kinds.get("value") and \
                    LETTERS.search(kinds["value"] or ""):
                self.found.append(f'value="{kinds["value"]}"')

    def handle_endtag(self, tag: str) -> None:
        if tag in UNSPOKEN and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and LETTERS.search(data) and not CODE_NAME.fullmatch(data.strip()):
            self.found.append(data.strip())


def template_files() -> list[Path]:
    kiln = ROOT / "src" / "kiln"
    return sorted([*kiln.glob("web/templates/**/*.html"), *kiln.glob("web/templates/**/*.xml"),
                   *kiln.glob("mediatypes/*/display.html")])


def untranslated_template_text() -> list[str]:
    """Literal words in templates that no ``_()`` or ``{% trans %}`` wraps."""
    from jinja2 import Environment

    env = Environment(extensions=["jinja2.ext.i18n"])
    found: list[str] = []
    for path in template_files():
        source = path.read_text(encoding="utf-8")
        # The template with every expression and tag as "0" and translated text left out: what remains
        # is the literal HTML, parsed whole so a tag split by an expression stays one tag.
        parts: list[str] = []
        depth, previous = 0, None
        for _lineno, token, value in env.lex(source):
            if token == "name" and previous == "block_begin" and value in ("trans", "endtrans"):
                depth += 1 if value == "trans" else -1
            if token == "data":
                if depth == 0:
                    parts.append(value)
            elif token in ("variable_begin", "block_begin"):
                parts.append("0")
            if token != "whitespace":
                previous = token
        finder = _TextFinder()
        finder.feed("".join(parts))
        finder.close()
        for text in finder.found:
            found.append(f"{path.relative_to(ROOT)}: untranslated text {text[:70]!r}")
    return found


def problems() -> list[str]:
    """Everything CI refuses: a template out of step with the code, a catalogue that does not compile or
    whose translations lose a placeholder, and a complete locale missing a string."""
    found: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        warned: list[str] = []
        fresh = load(extract(Path(tmp) / "fresh.pot", warned))
    found.extend(warned)
    found.extend(untranslated_template_text())
    wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in fresh if m.id}
    committed = load(TEMPLATE)
    have = {m.id if isinstance(m.id, str) else m.id[0] for m in committed if m.id}
    for msgid in sorted(wanted - have):
        found.append(f"messages.pot lacks {msgid!r}: run `scripts/translations.py extract` and `update`")
    for msgid in sorted(have - wanted):
        found.append(f"messages.pot still has {msgid!r}, which the code no longer says: run extract and update")
    for locale in locales():
        catalog = load(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", locale)
        try:
            write_mo(io.BytesIO(), catalog)
        except Exception as exc:
            found.append(f"{locale}: the catalogue does not compile ({exc})")
        for message, errors in catalog.check():
            for error in errors:
                found.append(f"{locale}: {message.id!r}: {error}")
        ids = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
        for msgid in sorted(wanted - ids):
            if locale in COMPLETE:
                found.append(f"{locale}: {msgid!r} is not in the catalogue: run `scripts/translations.py update`")
        if locale not in COMPLETE:
            continue
        for message in catalog:
            if not message.id:
                continue
            strings = message.string if isinstance(message.string, tuple | list) else [message.string]
            if message.fuzzy or not all(strings):
                found.append(f"{locale}: {message.id!r} is not translated" + (" (fuzzy)" if message.fuzzy else ""))
    return found


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    if command == "extract":
        print(extract())
    elif command == "update":
        update()
    elif command == "init" and len(argv) == 3:
        init(argv[2])
    elif command == "check":
        issues = problems()
        for line in issues:
            print(line)
        print(f"{len(issues)} problem(s) in {len(locales())} catalogue(s)")
        return 1 if issues else 0
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
