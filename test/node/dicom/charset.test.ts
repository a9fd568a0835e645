import { describe, expect, it } from 'vitest'
import { createTextDecoder } from '../../../node/dicom/charset.ts'
import { CharsetError } from '../../../node/dicom/errors.ts'

/*
 * Byte sequences are the ones printed in DICOM PS3.5 Annexes H–K (and in the matching pydicom
 * charset_files, chrH31.dcm & co.), written out here byte by byte: a string literal such as
 * 'Yamada^Tarou=' stands for its ASCII bytes, numbers are raw bytes.
 */
const ESC = 0x1b
function bytes (...parts: Array<string | number | number[]>): Uint8Array {
  const out: number[] = []
  for (const part of parts) {
    if (typeof part === 'number') out.push(part)
    else if (Array.isArray(part)) out.push(...part)
    else for (const ch of part) out.push(ch.charCodeAt(0))
  }
  return Uint8Array.from(out)
}
const JIS_X_0208 = [ESC, 0x24, 0x42] // ESC $ B
const ASCII_G0 = [ESC, 0x28, 0x42] // ESC ( B
const ROMAJI_G0 = [ESC, 0x28, 0x4a] // ESC ( J
const KS_X_1001 = [ESC, 0x24, 0x29, 0x43] // ESC $ ) C
const GB_2312 = [ESC, 0x24, 0x29, 0x41] // ESC $ ) A

function decode (terms: readonly string[], value: Uint8Array, vr = 'PN'): string {
  return createTextDecoder(terms).decode(value, vr)
}

describe('single-byte character sets', () => {
  it('reads the default repertoire, with bytes >= 0x80 as Latin-1 rather than failing', () => {
    expect(decode([], bytes('Doe^John'))).toBe('Doe^John')
    expect(decode([''], bytes('Doe^John'))).toBe('Doe^John')
    expect(decode(['ISO_IR 6'], bytes('Doe^John'))).toBe('Doe^John')
    expect(decode([], bytes('Buc^J', 0xe9, 'r', 0xf4, 'me'))).toBe('Buc^Jérôme')
  })

  it('reads ISO_IR 100 as true ISO 8859-1, not windows-1252', () => {
    expect(decode(['ISO_IR 100'], bytes('Buc^J', 0xe9, 'r', 0xf4, 'me'))).toBe('Buc^Jérôme') // chrFren
    expect(decode(['ISO_IR 100'], bytes(0xc4, 'neas^R', 0xfc, 'diger'))).toBe('Äneas^Rüdiger') // chrGerm
    expect(decode(['ISO_IR 100'], bytes('A', 0x80, 0x9f), 'LO')).toBe('A\u0080\u009f')
  })

  it('reads Greek, Cyrillic, Arabic, Hebrew, Latin-5, Latin-9 and Thai', () => {
    expect(decode(['ISO_IR 126'], bytes(0xc4, 0xe9, 0xef, 0xed, 0xf5, 0xf3, 0xe9, 0xef, 0xf2))).toBe('Διονυσιος') // chrGreek
    expect(decode(['ISO_IR 144'], bytes(0xbb, 0xee, 0xda, 'ce', 0xdc, 0xd1, 'yp', 0xd3))).toBe('Люкceмбypг') // chrRuss
    expect(decode(['ISO_IR 127'], bytes(0xe2, 0xc8, 0xc7, 0xe6, 0xea, '^', 0xe4, 0xe6, 0xd2, 0xc7, 0xd1))).toBe('قباني^لنزار') // chrArab
    expect(decode(['ISO_IR 138'], bytes(0xf9, 0xf8, 0xe5, 0xef, '^', 0xe3, 0xe1, 0xe5, 0xf8, 0xe4))).toBe('שרון^דבורה') // chrHbrw
    expect(decode(['ISO_IR 148'], bytes(0xdd, 'stanbul', 0x80), 'LO')).toBe('İstanbul\u0080')
    expect(decode(['ISO_IR 203'], bytes('5', 0xa4), 'LO')).toBe('5€')
    expect(decode(['ISO_IR 101'], bytes(0xa3, 0xf3, 'd', 0xbc), 'LO')).toBe('Łódź')
    expect(decode(['ISO_IR 166'], bytes(0xe4, 0xb7, 0xc2), 'LO')).toBe('ไทย')
  })

  it('reads ISO_IR 13 as JIS X 0201: katakana in GR, Roman in GL', () => {
    expect(decode(['ISO_IR 13'], bytes(0xd4, 0xcf, 0xc0, 0xde, '^', 0xc0, 0xdb, 0xb3))).toBe('ﾔﾏﾀﾞ^ﾀﾛｳ')
    // 0x5C is YEN SIGN in JIS X 0201 Roman, except where it is the value delimiter
    expect(decode(['ISO_IR 13'], bytes('100', 0x5c, '~'), 'ST')).toBe('100¥‾')
    expect(decode(['ISO_IR 13'], bytes('A\\B'), 'LO')).toBe('A\\B')
  })
})

describe('multi-byte character sets without code extensions', () => {
  it('reads UTF-8 (PS3.5 J.1, chrX1)', () => {
    const value = bytes('Wang^XiaoDong=', [0xe7, 0x8e, 0x8b], '^', [0xe5, 0xb0, 0x8f, 0xe6, 0x9d, 0xb1], '=')
    expect(decode(['ISO_IR 192'], value)).toBe('Wang^XiaoDong=王^小東=')
  })

  it('reads GB18030 (PS3.5 J.3, chrX2) and GBK', () => {
    const value = bytes('Wang^XiaoDong=', [0xcd, 0xf5], '^', [0xd0, 0xa1, 0xb6, 0xab], '=')
    expect(decode(['GB18030'], value)).toBe('Wang^XiaoDong=王^小东=')
    expect(decode(['GBK'], value)).toBe('Wang^XiaoDong=王^小东=')
  })

  it('does not split a GBK character whose trail byte is 0x5C', () => {
    expect(decode(['GBK'], bytes([0x81, 0x5c], '\\B '), 'LO')).toBe('乗\\B')
    expect(decode(['GB18030'], bytes([0x81, 0x5c], ' \\ B  '), 'LO')).toBe('乗\\ B')
  })

  it('splits and trims UTF-8 values, and keeps backslashes in ST', () => {
    expect(decode(['ISO_IR 192'], bytes('a ', 0x5c, 'b\0'), 'LO')).toBe('a\\b')
    expect(decode(['ISO_IR 192'], bytes('C:\\dir\\x  '), 'ST')).toBe('C:\\dir\\x')
  })
})

describe('ISO 2022 code extensions', () => {
  it('reads the Japanese example of PS3.5 H.3.1 (\\ISO 2022 IR 87)', () => {
    const value = bytes(
      'Yamada^Tarou=',
      JIS_X_0208, ';3ED', ASCII_G0, '^', JIS_X_0208, 'B@O:', ASCII_G0, '=',
      JIS_X_0208, '$d$^$@', ASCII_G0, '^', JIS_X_0208, '$?$m$&', ASCII_G0
    )
    expect(decode(['', 'ISO 2022 IR 87'], value)).toBe('Yamada^Tarou=山田^太郎=やまだ^たろう')
  })

  it('reads the Japanese example of PS3.5 H.3.2 (ISO 2022 IR 13\\ISO 2022 IR 87)', () => {
    const value = bytes(
      [0xd4, 0xcf, 0xc0, 0xde], '^', [0xc0, 0xdb, 0xb3], '=',
      JIS_X_0208, ';3ED', ROMAJI_G0, '^', JIS_X_0208, 'B@O:', ROMAJI_G0, '=',
      JIS_X_0208, '$d$^$@', ROMAJI_G0, '^', JIS_X_0208, '$?$m$&', ROMAJI_G0
    )
    expect(decode(['ISO 2022 IR 13', 'ISO 2022 IR 87'], value)).toBe('ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう')
  })

  it('reads JIS X 0212 (ISO 2022 IR 159)', () => {
    const value = bytes(JIS_X_0208, '$^', [ESC, 0x24, 0x28, 0x44], '0!', ASCII_G0)
    expect(decode(['', 'ISO 2022 IR 87', 'ISO 2022 IR 159'], value, 'LO')).toBe('ま丂')
  })

  it('does not treat 0x5C, 0x5E or 0x3D inside a JIS X 0208 character as a delimiter', () => {
    // 宮 is 0x35 0x5C and ま is 0x24 0x5E: in JIS X 0208 those bytes are halves of a character
    expect(decode(['', 'ISO 2022 IR 87'], bytes(JIS_X_0208, '5\\', ASCII_G0, '\\x'), 'LO')).toBe('宮\\x')
    expect(decode(['', 'ISO 2022 IR 87'], bytes(JIS_X_0208, '$^', ASCII_G0, '^a'))).toBe('ま^a')
    expect(decode(['', 'ISO 2022 IR 87'], bytes(JIS_X_0208, '5\\$^'), 'LO')).toBe('宮ま')
  })

  it('returns to the first set at each value and PN component group', () => {
    // G1 Greek in value 1; value 2 has no escape, so G1 is back to the first term's (none -> Latin-1)
    const terms = ['', 'ISO 2022 IR 100', 'ISO 2022 IR 126']
    expect(decode(terms, bytes([ESC, 0x2d, 0x46], 0xc4, '\\', 0xc4), 'LO')).toBe('Δ\\Ä')
    expect(decode(terms, bytes([ESC, 0x2d, 0x46], 0xc4, '^', 0xc4, '=', 0xc4))).toBe('Δ^Ä=Ä')
    // G0 goes back to JIS X 0201 Roman (value 1 of ISO 2022 IR 13), where 0x7E is OVERLINE
    const value = bytes(JIS_X_0208, ';3', ASCII_G0, '~\\~')
    expect(decode(['ISO 2022 IR 13', 'ISO 2022 IR 87'], value, 'LO')).toBe('山~\\‾')
  })

  it('returns to the first set at line ends of text values', () => {
    // CR LF resets G0 to ASCII, so 'ok' after the line break is not read as JIS X 0208
    const text = bytes(JIS_X_0208, ';3ED', '\r\n', 'ok\\ ')
    expect(decode(['', 'ISO 2022 IR 87'], text, 'LT')).toBe('山田\r\nok\\')
    const tabbed = bytes(JIS_X_0208, ';3', '\t', 'x')
    expect(decode(['', 'ISO 2022 IR 87'], tabbed, 'ST')).toBe('山\tx')
  })

  it('reads the Korean example of PS3.5 I.2 (\\ISO 2022 IR 149)', () => {
    const value = bytes(
      'Hong^Gildong=',
      KS_X_1001, [0xfb, 0xf3], '^', KS_X_1001, [0xd1, 0xce, 0xd4, 0xd7], '=',
      KS_X_1001, [0xc8, 0xab], '^', KS_X_1001, [0xb1, 0xe6, 0xb5, 0xbf]
    )
    expect(decode(['', 'ISO 2022 IR 149'], value)).toBe('Hong^Gildong=洪^吉洞=홍^길동')
  })

  it('reads KS X 1001 without escapes, as some Korean writers produce', () => {
    expect(decode(['', 'ISO 2022 IR 149'], bytes([0xb1, 0xe8, 0xc8, 0xf1, 0xc1, 0xdf]))).toBe('김희중')
  })

  it('reads the Chinese examples of PS3.5 Annex K (\\ISO 2022 IR 58)', () => {
    const name = bytes('Zhang^XiaoDong=', GB_2312, [0xd5, 0xc5], '^', GB_2312, [0xd0, 0xa1, 0xb6, 0xab], '=')
    expect(decode(['', 'ISO 2022 IR 58'], name)).toBe('Zhang^XiaoDong=张^小东=')
    const text = bytes('1.', GB_2312, [0xb5, 0xda, 0xd2, 0xbb, 0xd0, 0xd0], '\r\n2.', GB_2312, [0xb5, 0xda, 0xb6, 0xfe, 0xd0, 0xd0], '\r\n')
    expect(decode(['', 'ISO 2022 IR 58'], text, 'LT')).toBe('1.第一行\r\n2.第二行\r\n')
  })

  it('switches among single-byte G1 sets', () => {
    const value = bytes([ESC, 0x2d, 0x41], 'Buc^J', 0xe9, 'r', 0xf4, 'me=', [ESC, 0x2d, 0x46], 0xc4, 0xe9, 0xef)
    expect(decode(['ISO 2022 IR 100', 'ISO 2022 IR 126'], value)).toBe('Buc^Jérôme=Διο')
    // after the '=' the first set (Latin-1) is back in G1
    expect(decode(['ISO 2022 IR 100', 'ISO 2022 IR 126'], bytes([ESC, 0x2d, 0x46], 0xc4, '=', 0xc4))).toBe('Δ=Ä')
  })

  it('drops unknown or truncated escape sequences', () => {
    expect(decode(['', 'ISO 2022 IR 87'], bytes('a', [ESC, 0x24, 0x2a, 0x5a], 'b', ESC), 'LO')).toBe('ab')
  })
})

describe('padding, empties and errors', () => {
  it('trims trailing spaces and NULs of each value, keeping leading spaces', () => {
    expect(decode([], bytes('ABC  \\ DEF\0'), 'LO')).toBe('ABC\\ DEF')
    expect(decode(['', 'ISO 2022 IR 87'], bytes(JIS_X_0208, ';3', ASCII_G0, ' \\x '), 'SH')).toBe('山\\x')
    expect(decode(['ISO_IR 100'], bytes('  text with \\ slash  '), 'UT')).toBe('  text with \\ slash')
  })

  it('returns an empty string for empty bytes and keeps empty values', () => {
    expect(decode([], new Uint8Array(0), 'LO')).toBe('')
    expect(decode(['ISO_IR 192'], new Uint8Array(0), 'PN')).toBe('')
    expect(decode(['', 'ISO 2022 IR 87'], bytes(' '), 'PN')).toBe('')
    expect(decode([], bytes('\\B\\ '), 'LO')).toBe('\\B\\')
  })

  it('tolerates common spellings of the defined terms', () => {
    expect(decode(['ISO_IR100'], bytes(0xe9), 'LO')).toBe('é')
    expect(decode(['iso-ir 144'], bytes(0xbb), 'LO')).toBe('Л')
    expect(decode(['ISO_IR 149'], bytes(KS_X_1001, [0xc8, 0xab]), 'LO')).toBe('홍')
  })

  it('throws CharsetError for a term it does not know', () => {
    const attempt = () => createTextDecoder(['', 'ISO 2022 IR 999'])
    expect(attempt).toThrow(CharsetError)
    try {
      createTextDecoder(['KOI8-R'])
      expect.unreachable()
    } catch (err) {
      expect(err).toBeInstanceOf(CharsetError)
      expect((err as CharsetError).code).toBe('BEELDNET_ERR_DICOM_CHARSET')
      expect((err as CharsetError).message).toContain('KOI8-R')
    }
  })
})
