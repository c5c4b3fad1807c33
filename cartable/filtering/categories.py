"""Every category UT1 publishes, with its default use (`black` or `white`).

From the `global_usage` file of the UT1 blacklists (https://dsi.ut-capitole.fr/blacklists/,
CC BY-SA 4.0, Fabrice Prigent), as shipped in data/ut1-blacklists/global_usage. The repository's
sample holds only 15 of these categories (data/README.md); this list names them all, so a
site file can name a category its sample lacks (the production mirror has every one) while a
typo is still refused. UT1 also publishes `liste_blanche` (usage white: sites for every
pupil), which global_usage does not describe; it is listed here too. A unit test keeps this
list equal to the shipped `global_usage` plus the sample's folders: after
`scripts/refresh-data ut1`, update it when UT1 adds a category.

Stdlib only (this package runs on the school server).
"""

from __future__ import annotations

UT1_CATEGORIES: dict[str, str] = {
    "adult": "black",
    "agressif": "black",
    "ai": "white",
    "arjel": "black",
    "associations_religieuses": "black",
    "astrology": "black",
    "audio-video": "black",
    "bank": "white",
    "bitcoin": "black",
    "blog": "black",
    "celebrity": "black",
    "chat": "black",
    "child": "white",
    "cleaning": "white",
    "cooking": "black",
    "cryptojacking": "black",
    "dangerous_material": "black",
    "dating": "black",
    "ddos": "black",
    "dialer": "black",
    "doh": "black",
    "download": "white",
    "drogue": "black",
    "dynamic-dns": "black",
    "educational_games": "white",
    "examen_pix": "white",
    "fakenews": "black",
    "filehosting": "black",
    "financial": "black",
    "forums": "black",
    "gambling": "black",
    "games": "black",
    "hacking": "black",
    "jobsearch": "white",
    "lingerie": "black",
    "liste_blanche": "white",  # published by UT1, absent from global_usage
    "liste_bu": "white",
    "malware": "black",
    "manga": "black",
    "marketingware": "black",
    "mixed_adult": "black",
    "mobile-phone": "black",
    "phishing": "black",
    "press": "white",
    "publicite": "black",
    "radio": "black",
    "reaffected": "black",
    "redirector": "black",
    "remote-control": "black",
    "residential-proxies": "black",
    "sect": "black",
    "sexual_education": "white",
    "shopping": "black",
    "shortener": "white",
    "social_networks": "black",
    "sports": "black",
    "stalkerware": "black",
    "strict_redirector": "black",
    "strong_redirector": "black",
    "translation": "white",
    "tricheur": "black",
    "tricheur_pix": "black",
    "update": "white",
    "vpn": "black",
    "warez": "black",
    "webhosting": "black",
    "webmail": "black",
}
