-- Characters Python's codecs decode otherwise than MariaDB (src/moodump/export/charmaps.py),
-- for the export test (tests/test_export.py): each must come out as MariaDB's
-- CONVERT(... USING utf8mb4) gives it.
CREATE TABLE charsets_py (
  id INT PRIMARY KEY,
  uj VARCHAR(10) CHARACTER SET ujis, ms VARCHAR(10) CHARACTER SET eucjpms,
  c866 VARCHAR(10) CHARACTER SET cp866, d8 VARCHAR(10) CHARACTER SET dec8,
  sw VARCHAR(10) CHARACTER SET swe7, ku VARCHAR(10) CHARACTER SET koi8u,
  gr VARCHAR(10) CHARACTER SET greek, he VARCHAR(10) CHARACTER SET hebrew,
  kr VARCHAR(10) CHARACTER SET euckr, am VARCHAR(10) CHARACTER SET armscii8,
  ge VARCHAR(10) CHARACTER SET geostd8, kb VARCHAR(10) CHARACTER SET keybcs2
) DEFAULT CHARSET=utf8mb4;
INSERT INTO charsets_py VALUES
 (1, _ujis 0xA1C0A4A2, _eucjpms 0xA1C1A1C2A1DD, _cp866 0xFCFD, _dec8 0xA8D7, _swe7 0x405B5C7B,
  _koi8u 0x95, _greek 0xA1A2, _hebrew 0xAF, _euckr 0x8141, _armscii8 0xB2B3, _geostd8 0xC0C1,
  _keybcs2 0x8081),
 (2, 'plain', 'plain', 'plain', 'plain', 'plain', 'plain', 'plain', 'plain', 'plain', 'plain',
  'plain', 'plain');
