"""Writing system and resource group of every language xstilts reports.

Covers the 112 Tatoeba result codes (:data:`xstilts.data.languages.ALL_TATOEBA`), English, BUCC
(de fr ru zh), LAReQA's 11 and Mewsli-X's 11 languages, so the report can group per-language
deltas by resource level and by script without guessing.

Resource class: Joshi et al. (2020), "The State and Fate of Linguistic Diversity and Inclusion
in the NLP World", ACL 2020, https://aclanthology.org/2020.acl-main.560/ , whose language list
is published as ``lang2tax.txt`` (https://microsoft.github.io/linguisticdiversity/assets/
lang2tax.txt): six classes by available labelled and unlabelled resources, 0 "The Left-Behinds"
to 5 "The Winners". That file lists language *names*; the class of each language here was read
from a published copy of the list regrouped by class (MaLA-LM/LangResourceAtlas,
``language-source-classification/language-source-classification-by-Joshi.json``) and matched
by language *name*, not by that copy's machine-made ISO codes (several are wrong there, e.g.
"tangale" coded ``tgl``). :data:`JOSHI_NAME` records the name each class was read under, so
every entry can be checked against the original file. Where the list names a language twice
the specific name wins over the generic one: Slovenian (3, not "slovene" 0), Mongolian (1, not
"mongol" 0), Scottish Gaelic (1, not "gaelic" 0), West Frisian (1, not "frisian" 0), Upper and
Lower Sorbian (1, not "sorbian" 0), Waray (1, not "waray-waray" 0), Meadow Mari (1, not "mari"
0), Swiss German as "alemannic" (1, not "alsatian" 0) and Tatoeba's Kurdish, which is Kurmanji
in Latin script, as "kurdish (kurmanji)" (1, not "kurdish" 0).

Languages the list does not name get class None and resource group ``"unknown"`` - never a
guessed class: arq (Algerian Arabic), dtp (Central Dusun), kzj (Coastal Kadazan), lfn (Lingua
Franca Nova), max (North Moluccan Malay), nov (Novial), orv (Old Russian), swg (Swabian), tzl
(Talossan).

Resource groups (:func:`resource_group`): ``high`` = classes 4-5, ``mid`` = 3, ``low`` = 0-2,
the split used by other work that groups by this taxonomy.

Script: the ISO 15924 code of the script most of the language's Tatoeba sentences are written
in, counted over the letters of the LASER v1 files (tests recount it from the data). ``Hani``
is Han characters (Chinese varieties), ``Jpan`` Japanese (kana and kanji). Serbian (69% Latin,
31% Cyrillic), Uzbek (68% / 32%) and Lingua Franca Nova (73% / 27%) mix Latin and Cyrillic in
Tatoeba; they are listed under their majority script and in :data:`MIXED_SCRIPT`.
"""

from __future__ import annotations

from typing import Literal

ResourceGroup = Literal["high", "mid", "low", "unknown"]

# result code -> (ISO 15924 script, Joshi et al. 2020 class or None, name in the Joshi list)
_INFO: dict[str, tuple[str, int | None, str | None]] = {
    "af": ("Latn", 3, "afrikaans"), "am": ("Ethi", 2, "amharic"),
    "ang": ("Latn", 1, "anglo-saxon"), "ar": ("Arab", 5, "arabic"), "arq": ("Arab", None, None),
    "arz": ("Arab", 3, "egyptian arabic"), "ast": ("Latn", 1, "asturian"),
    "awa": ("Deva", 0, "awadhi"), "az": ("Latn", 1, "azerbaijani"),
    "be": ("Cyrl", 3, "belarusian"), "bn": ("Beng", 3, "bengali"), "ber": ("Latn", 0, "berber"),
    "bs": ("Latn", 3, "bosnian"), "br": ("Latn", 1, "breton"), "bg": ("Cyrl", 3, "bulgarian"),
    "ca": ("Latn", 4, "catalan"), "cbk": ("Latn", 1, "chavacano"), "ceb": ("Latn", 3, "cebuano"),
    "cs": ("Latn", 4, "czech"), "ch": ("Latn", 1, "chamorro"), "zh": ("Hani", 5, "mandarin"),
    "kw": ("Latn", 1, "cornish"), "csb": ("Latn", 1, "kashubian"), "cy": ("Latn", 1, "welsh"),
    "da": ("Latn", 3, "danish"), "de": ("Latn", 5, "german"), "dsb": ("Latn", 1, "lower sorbian"),
    "dtp": ("Latn", None, None), "el": ("Grek", 3, "greek"), "eo": ("Latn", 1, "esperanto"),
    "et": ("Latn", 3, "estonian"), "eu": ("Latn", 4, "basque"), "fo": ("Latn", 1, "faroese"),
    "fi": ("Latn", 4, "finnish"), "fr": ("Latn", 5, "french"), "fy": ("Latn", 1, "west frisian"),
    "gd": ("Latn", 1, "scottish gaelic"), "ga": ("Latn", 2, "irish"),
    "gl": ("Latn", 3, "galician"), "gsw": ("Latn", 1, "alemannic"), "he": ("Hebr", 3, "hebrew"),
    "hi": ("Deva", 4, "hindi"), "hr": ("Latn", 4, "croatian"), "hsb": ("Latn", 1, "upper sorbian"),
    "hu": ("Latn", 4, "hungarian"), "hy": ("Armn", 1, "armenian"), "io": ("Latn", 1, "ido"),
    "ie": ("Latn", 1, "interlingue"), "ia": ("Latn", 1, "interlingua"),
    "id": ("Latn", 3, "indonesian"), "is": ("Latn", 2, "icelandic"), "it": ("Latn", 4, "italian"),
    "jv": ("Latn", 1, "javanese"), "ja": ("Jpan", 5, "japanese"), "kab": ("Latn", 1, "kabyle"),
    "ka": ("Geor", 3, "georgian"), "kk": ("Cyrl", 3, "kazakh"), "km": ("Khmr", 1, "khmer"),
    "ko": ("Hang", 4, "korean"), "ku": ("Latn", 1, "kurdish (kurmanji)"),
    "kzj": ("Latn", None, None), "la": ("Latn", 3, "latin"), "lfn": ("Latn", None, None),
    "lt": ("Latn", 3, "lithuanian"), "lv": ("Latn", 3, "latvian"), "ml": ("Mlym", 1, "malayalam"),
    "mr": ("Deva", 2, "marathi"), "max": ("Latn", None, None), "mhr": ("Cyrl", 1, "meadow mari"),
    "mk": ("Cyrl", 1, "macedonian"), "mn": ("Cyrl", 1, "mongolian"),
    "nds": ("Latn", 0, "low german"), "nl": ("Latn", 4, "dutch"),
    "nn": ("Latn", 1, "norwegian (nynorsk)"), "nb": ("Latn", 1, "norwegian (bokmål)"),
    "nov": ("Latn", None, None), "oc": ("Latn", 1, "occitan"), "orv": ("Cyrl", None, None),
    "pam": ("Latn", 1, "kapampangan"), "fa": ("Arab", 4, "persian"),
    "pms": ("Latn", 1, "piedmontese"), "pl": ("Latn", 4, "polish"),
    "pt": ("Latn", 4, "portuguese"), "ro": ("Latn", 3, "romanian"), "ru": ("Cyrl", 4, "russian"),
    "sk": ("Latn", 3, "slovak"), "sl": ("Latn", 3, "slovenian"), "es": ("Latn", 5, "spanish"),
    "sq": ("Latn", 1, "albanian"), "sr": ("Latn", 4, "serbian"), "sv": ("Latn", 4, "swedish"),
    "swg": ("Latn", None, None), "sw": ("Latn", 2, "swahili"), "ta": ("Taml", 3, "tamil"),
    "tt": ("Cyrl", 1, "tatar"), "te": ("Telu", 1, "telugu"), "tl": ("Latn", 3, "tagalog"),
    "th": ("Thai", 3, "thai"), "tk": ("Latn", 1, "turkmen"), "tr": ("Latn", 4, "turkish"),
    "tzl": ("Latn", None, None), "ug": ("Arab", 1, "uyghur"), "uk": ("Cyrl", 3, "ukrainian"),
    "ur": ("Arab", 3, "urdu"), "uz": ("Latn", 3, "uzbek"), "vi": ("Latn", 4, "vietnamese"),
    "war": ("Latn", 1, "waray"), "wuu": ("Hani", 1, "wu"), "xh": ("Latn", 2, "xhosa"),
    "yi": ("Hebr", 1, "yiddish"), "yue": ("Hani", 1, "cantonese"), "ms": ("Latn", 3, "malay"),
    "en": ("Latn", 5, "english"),
}  # fmt: skip

MIXED_SCRIPT: frozenset[str] = frozenset({"sr", "uz", "lfn"})
JOSHI_CLASS: dict[str, int | None] = {code: cls for code, (_, cls, _) in _INFO.items()}
JOSHI_NAME: dict[str, str | None] = {code: name for code, (_, _, name) in _INFO.items()}
SCRIPT: dict[str, str] = {code: script for code, (script, _, _) in _INFO.items()}
RESOURCE_GROUPS: tuple[ResourceGroup, ...] = ("high", "mid", "low", "unknown")
SCRIPT_NAMES: dict[str, str] = {
    "Latn": "Latin", "Cyrl": "Cyrillic", "Arab": "Arabic", "Hani": "Han", "Jpan": "Japanese",
    "Hang": "Hangul", "Deva": "Devanagari", "Beng": "Bengali", "Taml": "Tamil",
    "Telu": "Telugu", "Mlym": "Malayalam", "Thai": "Thai", "Geor": "Georgian",
    "Armn": "Armenian", "Ethi": "Ethiopic", "Khmr": "Khmer", "Grek": "Greek", "Hebr": "Hebrew",
}  # fmt: skip


def joshi_class(code: str) -> int | None:
    """Joshi et al. (2020) class 0-5 of a result code, or None when the list does not name it."""
    return JOSHI_CLASS.get(code)


def resource_group(code: str) -> ResourceGroup:
    """``high`` (class 4-5), ``mid`` (3), ``low`` (0-2) or ``unknown`` (not classified)."""
    cls = JOSHI_CLASS.get(code)
    if cls is None:
        return "unknown"
    if cls >= 4:
        return "high"
    return "mid" if cls == 3 else "low"


def script(code: str) -> str:
    """ISO 15924 code of the language's (majority) script, or ``"unknown"``."""
    return SCRIPT.get(code, "unknown")


def script_name(code: str) -> str:
    """Readable name of the language's script (``"Latin"``, ``"Cyrillic"``, ...)."""
    sc = script(code)
    return SCRIPT_NAMES.get(sc, sc)
