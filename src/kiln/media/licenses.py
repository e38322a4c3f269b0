"""The licences a person can choose for their media (MediaGoblin's list)."""

from __future__ import annotations

from dataclasses import dataclass

from kiln.i18n import N_, gettext


@dataclass(frozen=True)
class License:
    """A licence. The English names are kept (``english_*``: for the API and logs); ``name`` and
    ``abbreviation`` are said in the reader's language (a Creative Commons name stays as it is unless
    a catalogue translates it)."""

    url: str
    english_abbreviation: str
    english_name: str

    @property
    def abbreviation(self) -> str:
        return gettext(self.english_abbreviation)

    @property
    def name(self) -> str:
        return gettext(self.english_name)


LICENSES = (
    License("", N_("All rights reserved"), N_("All rights reserved")),
    License("https://creativecommons.org/licenses/by/4.0/", "CC BY 4.0", N_("Creative Commons Attribution 4.0")),
    License("https://creativecommons.org/licenses/by-sa/4.0/", "CC BY-SA 4.0",
            N_("Creative Commons Attribution-ShareAlike 4.0")),
    License("https://creativecommons.org/licenses/by-nd/4.0/", "CC BY-ND 4.0",
            N_("Creative Commons Attribution-NoDerivatives 4.0")),
    License("https://creativecommons.org/licenses/by-nc/4.0/", "CC BY-NC 4.0",
            N_("Creative Commons Attribution-NonCommercial 4.0")),
    License("https://creativecommons.org/licenses/by-nc-sa/4.0/", "CC BY-NC-SA 4.0",
            N_("Creative Commons Attribution-NonCommercial-ShareAlike 4.0")),
    License("https://creativecommons.org/licenses/by-nc-nd/4.0/", "CC BY-NC-ND 4.0",
            N_("Creative Commons Attribution-NonCommercial-NoDerivatives 4.0")),
    License("https://creativecommons.org/publicdomain/zero/1.0/", "CC0 1.0",
            N_("Creative Commons Zero (public domain)")),
    License("https://creativecommons.org/publicdomain/mark/1.0/", N_("Public Domain Mark"),
            N_("Public Domain Mark 1.0")),
)
# Earlier versions of the Creative Commons licences: not offered for new uploads, but known, so that
# media licensed under them elsewhere (a MediaGoblin site of 2013, Flickr's 2.0 licences) keep their
# licence when imported (kiln.imports). Their names are Creative Commons' own, in English.
_KINDS = (("by", "Attribution"), ("by-sa", "Attribution-ShareAlike"), ("by-nd", "Attribution-NoDerivs"),
          ("by-nc", "Attribution-NonCommercial"), ("by-nc-sa", "Attribution-NonCommercial-ShareAlike"),
          ("by-nc-nd", "Attribution-NonCommercial-NoDerivs"))
OLDER = tuple(License(f"https://creativecommons.org/licenses/{code}/{version}/", f"CC {code.upper()} {version}",
                      f"Creative Commons {name} {version}")
              for version in ("2.0", "2.5", "3.0") for code, name in _KINDS)
BY_URL = {lic.url: lic for lic in (*LICENSES, *OLDER)}


def get_license(url: str | None) -> License:
    return BY_URL.get(url or "", LICENSES[0])


def is_known(url: str) -> bool:
    return url in BY_URL


def normalized(url: str) -> str:
    """A licence URL as Kiln writes it: https, with its final slash (MediaGoblin wrote http ones)."""
    url = url.strip()
    if url.startswith("http://creativecommons.org/"):
        url = "https://" + url.removeprefix("http://")
    if url.startswith("https://creativecommons.org/") and not url.endswith("/"):
        url += "/"
    return url
