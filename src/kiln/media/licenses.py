"""The licences a person can choose for their media (MediaGoblin's list)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class License:
    url: str
    abbreviation: str
    name: str


LICENSES = (
    License("", "All rights reserved", "All rights reserved"),
    License("https://creativecommons.org/licenses/by/4.0/", "CC BY 4.0", "Creative Commons Attribution 4.0"),
    License("https://creativecommons.org/licenses/by-sa/4.0/", "CC BY-SA 4.0",
            "Creative Commons Attribution-ShareAlike 4.0"),
    License("https://creativecommons.org/licenses/by-nd/4.0/", "CC BY-ND 4.0",
            "Creative Commons Attribution-NoDerivatives 4.0"),
    License("https://creativecommons.org/licenses/by-nc/4.0/", "CC BY-NC 4.0",
            "Creative Commons Attribution-NonCommercial 4.0"),
    License("https://creativecommons.org/licenses/by-nc-sa/4.0/", "CC BY-NC-SA 4.0",
            "Creative Commons Attribution-NonCommercial-ShareAlike 4.0"),
    License("https://creativecommons.org/licenses/by-nc-nd/4.0/", "CC BY-NC-ND 4.0",
            "Creative Commons Attribution-NonCommercial-NoDerivatives 4.0"),
    License("https://creativecommons.org/publicdomain/zero/1.0/", "CC0 1.0", "Creative Commons Zero (public domain)"),
    License("https://creativecommons.org/publicdomain/mark/1.0/", "Public Domain Mark", "Public Domain Mark 1.0"),
)
BY_URL = {lic.url: lic for lic in LICENSES}


def get_license(url: str | None) -> License:
    return BY_URL.get(url or "", LICENSES[0])


def is_known(url: str) -> bool:
    return url in BY_URL
