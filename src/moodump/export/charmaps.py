"""Where Python's codecs decode a MariaDB character set otherwise than MariaDB does.

Data, no code: for each character set, pairs of characters (Python's decoding, then
MariaDB's ``CONVERT(... USING utf8mb4)`` of the same bytes), found by converting every
1- and 2-byte sequence (and the 3-byte ones of ujis/eucjpms) on MariaDB 10.11 and
comparing; each Python character comes from one byte sequence only, so translating it
is exact. ``\udfff`` as MariaDB's side: MariaDB cannot convert those bytes (it writes
``?`` or U+FFFD), so the value becomes NULL and is counted. armscii8, geostd8 and
keybcs2 have no Python codec: they are read as latin-1 and translated entirely.
Tested in tests/test_export_types.py; used by :func:`moodump.export.convert.decode_text`.
"""

from __future__ import annotations

#: MariaDB character set -> (Python character, MariaDB character) pairs, concatenated.
MARIADB_FIXES = {
    "armscii8": (
        "\xa1\u2741\xa2\xa7\xa3\u0589\xa4)\xa5(\xa6\xbb\xa7\xab\xa8\u2014\xa9."
        "\xaa\u055d\xab,\xac-\xad\u055f\xae\u2026\xaf\u055c\xb0\u055b\xb1\u055e"
        "\xb2\u0531\xb3\u0561\xb4\u0532\xb5\u0562\xb6\u0533\xb7\u0563\xb8\u0534"
        "\xb9\u0564\xba\u0535\xbb\u0565\xbc\u0536\xbd\u0566\xbe\u0537\xbf\u0567"
        "\xc0\u0538\xc1\u0568\xc2\u0539\xc3\u0569\xc4\u053a\xc5\u056a\xc6\u053b"
        "\xc7\u056b\xc8\u053c\xc9\u056c\xca\u053d\xcb\u056d\xcc\u053e\xcd\u056e"
        "\xce\u053f\xcf\u056f\xd0\u0540\xd1\u0570\xd2\u0541\xd3\u0571\xd4\u0542"
        "\xd5\u0572\xd6\u0543\xd7\u0573\xd8\u0544\xd9\u0574\xda\u0545\xdb\u0575"
        "\xdc\u0546\xdd\u0576\xde\u0547\xdf\u0577\xe0\u0548\xe1\u0578\xe2\u0549"
        "\xe3\u0579\xe4\u054a\xe5\u057a\xe6\u054b\xe7\u057b\xe8\u054c\xe9\u057c"
        "\xea\u054d\xeb\u057d\xec\u054e\xed\u057e\xee\u054f\xef\u057f\xf0\u0550"
        "\xf1\u0580\xf2\u0551\xf3\u0581\xf4\u0552\xf5\u0582\xf6\u0553\xf7\u0583"
        "\xf8\u0554\xf9\u0584\xfa\u0555\xfb\u0585\xfc\u0556\xfd\u0586\xfe\u2019"
        "\xff'"
    ),
    "big5": "\u2574\udfff\uffe3\udfff\u02cd\udfff",
    "cp1256": (
        "\u0679\udfff\u0688\udfff\u06a9\udfff\u0691\udfff\u06ba\udfff\u06be\udfff"
        "\u06c1\udfff\u06d2\udfff"
    ),
    "cp866": "\u2116\u207f\xa4\xb2",
    "cp932": "\x80\udfff\uf8f0\udfff\uf8f1\udfff\uf8f2\udfff\uf8f3\udfff",
    "dec8": (
        "\xa4\udfff\xa6\udfff\xa8\xa4\xac\udfff\xad\udfff\xae\udfff\xaf\udfff\xb4"
        "\udfff\xb8\udfff\xbe\udfff\xd0\udfff\xd7\u0152\xdd\u0178\xde\udfff\xf0"
        "\udfff\xf7\u0153\xfd\xff\xfe\udfff\xff\udfff"
    ),
    "eucjpms": (
        "\u301c\uff5e\u2016\u2225\u2212\uff0d\xa2\uffe0\xa3\uffe1\xac\uffe2\xa6"
        "\uffe4"
    ),
    "geostd8": (
        "\x80\u20ac\x81\udfff\x82\u201a\x83\udfff\x84\u201e\x85\u2026\x86\u2020"
        "\x87\u2021\x88\udfff\x89\u2030\x8a\udfff\x8b\u2039\x8c\udfff\x8d\udfff"
        "\x8e\udfff\x8f\udfff\x90\udfff\x91\u2018\x92\u2019\x93\u201c\x94\u201d"
        "\x95\u2022\x96\u2013\x97\u2014\x98\udfff\x99\udfff\x9a\udfff\x9b\u203a"
        "\x9c\udfff\x9d\udfff\x9e\udfff\x9f\udfff\xc0\u10d0\xc1\u10d1\xc2\u10d2"
        "\xc3\u10d3\xc4\u10d4\xc5\u10d5\xc6\u10d6\xc7\u10f1\xc8\u10d7\xc9\u10d8"
        "\xca\u10d9\xcb\u10da\xcc\u10db\xcd\u10dc\xce\u10f2\xcf\u10dd\xd0\u10de"
        "\xd1\u10df\xd2\u10e0\xd3\u10e1\xd4\u10e2\xd5\u10f3\xd6\u10e3\xd7\u10e4"
        "\xd8\u10e5\xd9\u10e6\xda\u10e7\xdb\u10e8\xdc\u10e9\xdd\u10ea\xde\u10eb"
        "\xdf\u10ec\xe0\u10ed\xe1\u10ee\xe2\u10f4\xe3\u10ef\xe4\u10f0\xe5\u10f5"
        "\xe6\udfff\xe7\udfff\xe8\udfff\xe9\udfff\xea\udfff\xeb\udfff\xec\udfff"
        "\xed\udfff\xee\udfff\xef\udfff\xf0\udfff\xf1\udfff\xf2\udfff\xf3\udfff"
        "\xf4\udfff\xf5\udfff\xf6\udfff\xf7\udfff\xf8\udfff\xf9\udfff\xfa\udfff"
        "\xfb\udfff\xfc\udfff\xfd\u2116\xfe\udfff\xff\udfff"
    ),
    "greek": (
        "\u2018\u02bd\u2019\u02bc\u20ac\udfff\u20af\udfff\u037a\udfff"
    ),
    "hebrew": "\xaf\u203e",
    "keybcs2": (
        "\x80\u010c\x81\xfc\x82\xe9\x83\u010f\x84\xe4\x85\u010e\x86\u0164\x87"
        "\u010d\x88\u011b\x89\u011a\x8a\u0139\x8b\xcd\x8c\u013e\x8d\u013a\x8e\xc4"
        "\x8f\xc1\x90\xc9\x91\u017e\x92\u017d\x93\xf4\x94\xf6\x95\xd3\x96\u016f"
        "\x97\xda\x98\xfd\x99\xd6\x9a\xdc\x9b\u0160\x9c\u013d\x9d\xdd\x9e\u0158"
        "\x9f\u0165\xa0\xe1\xa1\xed\xa2\xf3\xa3\xfa\xa4\u0148\xa5\u0147\xa6\u016e"
        "\xa7\xd4\xa8\u0161\xa9\u0159\xaa\u0155\xab\u0154\xac\xbc\xad\xa1\xae\xab"
        "\xaf\xbb\xb0\u2591\xb1\u2592\xb2\u2593\xb3\u2502\xb4\u2524\xb5\u2561\xb6"
        "\u2562\xb7\u2556\xb8\u2555\xb9\u2563\xba\u2551\xbb\u2557\xbc\u255d\xbd"
        "\u255c\xbe\u255b\xbf\u2510\xc0\u2514\xc1\u2534\xc2\u252c\xc3\u251c\xc4"
        "\u2500\xc5\u253c\xc6\u255e\xc7\u255f\xc8\u255a\xc9\u2554\xca\u2569\xcb"
        "\u2566\xcc\u2560\xcd\u2550\xce\u256c\xcf\u2567\xd0\u2568\xd1\u2564\xd2"
        "\u2565\xd3\u2559\xd4\u2558\xd5\u2552\xd6\u2553\xd7\u256b\xd8\u256a\xd9"
        "\u2518\xda\u250c\xdb\u2588\xdc\u2584\xdd\u258c\xde\u2590\xdf\u2580\xe0"
        "\u03b1\xe1\xdf\xe2\u0393\xe3\u03c0\xe4\u03a3\xe5\u03c3\xe6\xb5\xe7\u03c4"
        "\xe8\u03a6\xe9\u0398\xea\u03a9\xeb\u03b4\xec\u221e\xed\u03c6\xee\u03b5"
        "\xef\u2229\xf0\u2261\xf1\xb1\xf2\u2265\xf3\u2264\xf4\u2320\xf5\u2321\xf6"
        "\xf7\xf7\u2248\xf8\xb0\xf9\u2219\xfa\xb7\xfb\u221a\xfc\u207f\xfd\xb2\xfe"
        "\u25a0\xff\xa0"
    ),
    "koi8u": "\u2219\u2022",
    "swe7": (
        "@\xc9[\xc4\\\xd6]\xc5^\xdc`\xe9{\xe4|\xf6}\xe5~\xfc\x7f\udfff"
    ),
    "ujis": "\uff3c\\",
}

#: Byte sequences whose character MariaDB converts and Python makes from another
#: sequence too (so no translation can tell them apart): a value holding one is NULL.
MARIADB_UNSURE = {
    "big5": (b"\xa1\xfe", b"\xa2\x40", b"\xa2\xcc", b"\xa2\xce"),
    "eucjpms": (b"\x8f\xa2\xb7",),
}
