"""``format`` values enforced as regexes over the canonical JSON string body (quotes excluded).

Each regex is exact for the grammar it names (RFC 3339 dates with month lengths and leap years,
RFC 4122 UUIDs, dotted-quad IPv4, RFC 4291 IPv6 text forms, RFC 1123 host names, a dot-atom e-mail
address, an RFC 3986 URI with a scheme, an RFC 3987 IRI: a URI with non-ASCII characters). ``FORMAT_LENGTHS`` gives (min, max) lengths in code points
so that ``minLength``/``maxLength`` next to a format can be checked at compile time.
Formats not listed here are annotations (ignored, and reported by ``explain``).
"""

from __future__ import annotations

import re
import warnings

_D = "[0-9]"
_LEAP = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
_DATE = (
    "(?:" + _D + "{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))|" + _LEAP + "-02-29)"
)
_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]+)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
_DUR_T = "T(?:[0-9]+H(?:[0-9]+M)?(?:[0-9]+S)?|[0-9]+M(?:[0-9]+S)?|[0-9]+S)"
_DURATION = (
    "P(?:(?:[0-9]+Y(?:[0-9]+M)?(?:[0-9]+D)?|[0-9]+M(?:[0-9]+D)?|[0-9]+D)(?:" + _DUR_T + ")?|" + _DUR_T + "|[0-9]+W)"
)
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = _OCTET + "(?:\\." + _OCTET + "){3}"
_H16 = "[0-9a-fA-F]{1,4}"
_LS32 = "(?:" + _H16 + ":" + _H16 + "|" + _IPV4 + ")"


def _ipv6() -> str:
    h = _H16
    alts = [
        f"(?:{h}:){{6}}{_LS32}",
        f"::(?:{h}:){{5}}{_LS32}",
        f"(?:{h})?::(?:{h}:){{4}}{_LS32}",
        f"(?:(?:{h}:){{0,1}}{h})?::(?:{h}:){{3}}{_LS32}",
        f"(?:(?:{h}:){{0,2}}{h})?::(?:{h}:){{2}}{_LS32}",
        f"(?:(?:{h}:){{0,3}}{h})?::{h}:{_LS32}",
        f"(?:(?:{h}:){{0,4}}{h})?::{_LS32}",
        f"(?:(?:{h}:){{0,5}}{h})?::{h}",
        f"(?:(?:{h}:){{0,6}}{h})?::",
    ]
    return "(?:" + "|".join(alts) + ")"


_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = _LABEL + "(?:\\." + _LABEL + ")*"
_ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_EMAIL = _ATEXT + "+(?:\\." + _ATEXT + "+)*@" + _HOSTNAME
_URI_CHARS = "[A-Za-z0-9\\-._~:/?#\\[\\]@!$&'()*+,;=]"
_PCT = "%[0-9a-fA-F]{2}"
_URI = "[A-Za-z][A-Za-z0-9+.\\-]*:(?:" + _URI_CHARS + "|" + _PCT + ")*"
# RFC 3986 URI-reference = URI / relative-ref; a relative reference's first segment has no ':'
# (path-noscheme), so '://' or ':a' are not references
_URI_REF = (
    "(?:"
    + _URI
    + "|(?:[A-Za-z0-9\\-._~@!$&'()*+,;=\\[\\]]|"
    + _PCT
    + ")*(?:[/?#](?:"
    + _URI_CHARS
    + "|"
    + _PCT
    + ")*)?)"
)
# RFC 3987 IRIs: the URI grammar above with ucschar (and iprivate, which only the query may hold in
# the RFC; allowed wherever a URI character is, as the URI regex allows '?' and '#' anywhere)
_UCS = (
    "\u00a0-\ud7ff\uf900-\ufdcf\ufdf0-\uffef"
    + "".join(chr(p << 16) + "-" + chr((p << 16) | 0xFFFD) for p in range(1, 15))
    + "\ue000-\uf8ff"
    + chr(0xF0000)
    + "-"
    + chr(0xFFFFD)
    + chr(0x100000)
    + "-"
    + chr(0x10FFFD)
)
_IRI_CHARS = "[A-Za-z0-9\\-._~:/?#\\[\\]@!$&'()*+,;=" + _UCS + "]"
_IRI = "[A-Za-z][A-Za-z0-9+.\\-]*:(?:" + _IRI_CHARS + "|" + _PCT + ")*"
_IRI_REF = (
    "(?:"
    + _IRI
    + "|(?:[A-Za-z0-9\\-._~@!$&'()*+,;=\\[\\]"
    + _UCS
    + "]|"
    + _PCT
    + ")*(?:[/?#](?:"
    + _IRI_CHARS
    + "|"
    + _PCT
    + ")*)?)"
)
_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_JSON_POINTER = '(?:/(?:[^/~"\\\\\\x00-\\x1f]|~[01])*)*'

FORMATS: dict[str, str] = {
    "date-time": _DATE + "[Tt]" + _TIME,
    "date": _DATE,
    "time": _TIME,
    "duration": _DURATION,
    "email": _EMAIL,
    "hostname": _HOSTNAME,
    "ipv4": _IPV4,
    "ipv6": _ipv6(),
    "uri": _URI,
    "uri-reference": _URI_REF,
    "iri": _IRI,
    "iri-reference": _IRI_REF,
    "uuid": _UUID,
    "json-pointer": _JSON_POINTER,
}

FORMAT_LENGTHS: dict[str, tuple[int, int | None]] = {
    "date-time": (20, None),
    "date": (10, 10),
    "time": (9, None),
    "duration": (3, None),
    "email": (3, None),
    "hostname": (1, None),
    "ipv4": (7, 15),
    "ipv6": (2, 45),
    "uri": (2, None),
    "uri-reference": (0, None),
    "iri": (2, None),
    "iri-reference": (0, None),
    "uuid": (36, 36),
    "json-pointer": (0, None),
}

_COMPILED = {name: re.compile(rx) for name, rx in FORMATS.items()}


def _is_regex(value: str) -> bool:
    """ECMA-262 regex syntax, approximated as jsonschema's own check does (Python ``re`` compiles it)."""
    with warnings.catch_warnings():  # e.g. "possible nested set": a valid pattern, not our concern
        warnings.simplefilter("ignore")
        try:
            re.compile(value)
        except (re.error, RecursionError, OverflowError):
            return False
    return True


# Formats no regular language expresses: enforced by a check on the completed string instead.
CHECKED_FORMATS = {"regex": _is_regex}


def check_format(name: str, value: object) -> bool:
    """Whether a decoded string satisfies an enforced format (non-strings and unknown formats pass)."""
    if name in CHECKED_FORMATS:
        return not isinstance(value, str) or CHECKED_FORMATS[name](value)
    rx = _COMPILED.get(name)
    if rx is None or not isinstance(value, str):
        return True
    import json

    return rx.fullmatch(json.dumps(value, ensure_ascii=False)[1:-1]) is not None
