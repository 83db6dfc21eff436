"""Language codes and the Tatoeba language sets.

Tatoeba (LASER v1) names files by ISO 639-3 codes (``cmn``, ``pes``, ``swh`` ...). Results use
the ISO 639-1 code where one exists (``zh``, ``fa``, ``sw`` ...) and the LASER code otherwise, so
tables line up with XTREME/XTREME-R. The mapping is one-to-one on the 112 Tatoeba languages.
"""

from __future__ import annotations

from xstilts.errors import DataError, closest

# LASER Tatoeba code -> ISO 639-1 code, or None where ISO 639-1 has no code for the language.
LASER_TO_ISO1: dict[str, str | None] = {
    "afr": "af", "amh": "am", "ang": None, "ara": "ar", "arq": None, "arz": None, "ast": None,
    "awa": None, "aze": "az", "bel": "be", "ben": "bn", "ber": None, "bos": "bs", "bre": "br",
    "bul": "bg", "cat": "ca", "cbk": None, "ceb": None, "ces": "cs", "cha": "ch", "cmn": "zh",
    "cor": "kw", "csb": None, "cym": "cy", "dan": "da", "deu": "de", "dsb": None, "dtp": None,
    "ell": "el", "epo": "eo", "est": "et", "eus": "eu", "fao": "fo", "fin": "fi", "fra": "fr",
    "fry": "fy", "gla": "gd", "gle": "ga", "glg": "gl", "gsw": None, "heb": "he", "hin": "hi",
    "hrv": "hr", "hsb": None, "hun": "hu", "hye": "hy", "ido": "io", "ile": "ie", "ina": "ia",
    "ind": "id", "isl": "is", "ita": "it", "jav": "jv", "jpn": "ja", "kab": None, "kat": "ka",
    "kaz": "kk", "khm": "km", "kor": "ko", "kur": "ku", "kzj": None, "lat": "la", "lfn": None,
    "lit": "lt", "lvs": "lv", "mal": "ml", "mar": "mr", "max": None, "mhr": None, "mkd": "mk",
    "mon": "mn", "nds": None, "nld": "nl", "nno": "nn", "nob": "nb", "nov": None, "oci": "oc",
    "orv": None, "pam": None, "pes": "fa", "pms": None, "pol": "pl", "por": "pt", "ron": "ro",
    "rus": "ru", "slk": "sk", "slv": "sl", "spa": "es", "sqi": "sq", "srp": "sr", "swe": "sv",
    "swg": None, "swh": "sw", "tam": "ta", "tat": "tt", "tel": "te", "tgl": "tl", "tha": "th",
    "tuk": "tk", "tur": "tr", "tzl": None, "uig": "ug", "ukr": "uk", "urd": "ur", "uzb": "uz",
    "vie": "vi", "war": None, "wuu": None, "xho": "xh", "yid": "yi", "yue": None, "zsm": "ms",
}  # fmt: skip

ISO1_TO_LASER: dict[str, str] = {iso: laser for laser, iso in LASER_TO_ISO1.items() if iso}

# XTREME's 36 Tatoeba languages (Hu et al. 2020), in XTREME's order.
XTREME_TATOEBA: tuple[str, ...] = (
    "ar", "he", "vi", "id", "jv", "tl", "eu", "ml", "ta", "te", "af", "nl", "de", "el", "bn",
    "hi", "mr", "ur", "fa", "fr", "it", "pt", "es", "bg", "ru", "ja", "ka", "ko", "th", "sw",
    "zh", "kk", "tr", "et", "fi", "hu",
)  # fmt: skip
# XTREME-R adds five languages (Ruder et al. 2021).
XTREME_R_TATOEBA: tuple[str, ...] = (*XTREME_TATOEBA, "az", "lt", "pl", "uk", "ro")
ALL_TATOEBA: tuple[str, ...] = tuple(LASER_TO_ISO1[c] or c for c in sorted(LASER_TO_ISO1))

LANGUAGE_SETS: dict[str, tuple[str, ...]] = {
    "xtreme": XTREME_TATOEBA,
    "xtreme-r": XTREME_R_TATOEBA,
    "all": ALL_TATOEBA,
}


def display_code(laser: str) -> str:
    """The code results use for a LASER language: ISO 639-1 where it exists, else LASER's."""
    return LASER_TO_ISO1.get(laser) or laser


def to_laser(code: str) -> str | None:
    """LASER code for an ISO 639-1 or LASER code, or None when it is not a Tatoeba language."""
    code = code.strip().lower()
    if code in LASER_TO_ISO1:
        return code
    return ISO1_TO_LASER.get(code)


def parse_tatoeba_langs(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """Expand a language spec (a set name or a comma list of codes) to result codes.

    Accepts set names (``xtreme``, ``xtreme-r``, ``all``), ISO 639-1 codes and LASER codes,
    mixed. Unknown codes raise one error that names them and lists the valid choices.
    Duplicates are dropped, order kept.
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    unknown: list[str] = []
    for raw in items:
        item = raw.strip().lower()
        if not item:
            continue
        if item in LANGUAGE_SETS:
            out.extend(LANGUAGE_SETS[item])
            continue
        laser = to_laser(item)
        if laser is None:
            unknown.append(item)
        else:
            out.append(display_code(laser))
    if unknown:
        valid = sorted(set(ALL_TATOEBA))
        hint = closest(unknown[0], [*valid, *LANGUAGE_SETS])
        raise DataError(
            f"unknown Tatoeba language {', '.join(map(repr, unknown))}{hint}; use a set "
            f"({', '.join(LANGUAGE_SETS)}) or codes: {' '.join(valid)}"
        )
    if not out:
        raise DataError("no languages given (use e.g. --langs xtreme or --langs de,fr)")
    return list(dict.fromkeys(out))
