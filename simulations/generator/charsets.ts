// Specific Character Set encoders (PS3.3 C.12.1.1.2, PS3.5 6.1). Each returns the exact bytes the charset
// prescribes; dcmjs would write UTF-8, which is wrong for everything but ISO_IR 192.
import { UnencodableTextError } from './errors.ts'

export type CharsetName = 'ascii' | 'latin1' | 'utf8' | 'greek' | 'japanese'

export interface Charset {
  name: CharsetName
  /** Value(s) of SpecificCharacterSet (0008,0005); empty for the default repertoire (element omitted). */
  terms: readonly string[]
  encode (text: string): Uint8Array
  /** Decodes bytes written by encode (for tests and reports). */
  decode (bytes: Uint8Array): string
}

function singleByte (name: CharsetName, text: string, map: (cp: number) => number | undefined): Uint8Array {
  const out = new Uint8Array(text.length)
  for (let i = 0; i < text.length; i++) {
    const b = map(text.charCodeAt(i))
    if (b === undefined) throw new UnencodableTextError(text, name)
    out[i] = b
  }
  return out
}

// ISO 8859-7: the Greek letters U+0386..U+03CE sit at 0xB6..0xFE (minus the code points 8859-7 does not map).
function greekByte (cp: number): number | undefined {
  if (cp < 0x80) return cp
  if (cp >= 0x0386 && cp <= 0x03CE && cp !== 0x0387 && cp !== 0x038B && cp !== 0x038D && cp !== 0x03A2) {
    return cp - 0x2D0
  }
  if (cp === 0xA0 || cp === 0xA3 || cp === 0xA6 || cp === 0xA7 || cp === 0xA8 || cp === 0xA9 || cp === 0xAB ||
    cp === 0xAC || cp === 0xAD || cp === 0xB0 || cp === 0xB1 || cp === 0xB2 || cp === 0xB3 || cp === 0xB7 ||
    cp === 0xBB || cp === 0xBD) return cp
  return undefined
}

// JIS X 0208 (ISO 2022 IR 87): reverse table built once from the WHATWG iso-2022-jp decoder, so no big
// hand-made table is needed. Key: code point, value: the two 7-bit bytes as one 16-bit number.
let jisTable: Map<number, number> | undefined
function jisCode (cp: number): number | undefined {
  if (jisTable === undefined) {
    jisTable = new Map()
    const decoder = new TextDecoder('iso-2022-jp')
    const bytes = new Uint8Array(6)
    bytes.set([0x1B, 0x24, 0x42])
    for (let hi = 0x21; hi <= 0x7E; hi++) {
      for (let lo = 0x21; lo <= 0x7E; lo++) {
        bytes[3] = hi
        bytes[4] = lo
        const s = decoder.decode(bytes.subarray(0, 5))
        const c = s.codePointAt(0)
        if (s.length === 1 && c !== undefined && c !== 0xFFFD && !jisTable.has(c)) jisTable.set(c, (hi << 8) | lo)
      }
    }
  }
  return jisTable.get(cp)
}

const ESC_JIS = [0x1B, 0x24, 0x42] // ESC $ B: G0 := JIS X 0208
const ESC_ASCII = [0x1B, 0x28, 0x42] // ESC ( B: G0 := ASCII

// ISO 2022 with code extensions as DICOM uses it: switch to JIS X 0208 for a run of kanji/kana and back to
// ASCII before any ASCII character (so the ^ and = delimiters of PN, and the end of a value, are in ASCII).
// For "Yamada^Tarou=山田^太郎=やまだ^たろう" this gives the bytes of PS3.5 H.3.1.
function encodeIso2022Jp (text: string): Uint8Array {
  const out: number[] = []
  let jis = false
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number
    if (cp < 0x80) {
      if (jis) { out.push(...ESC_ASCII); jis = false }
      out.push(cp)
      continue
    }
    const code = jisCode(cp)
    if (code === undefined) throw new UnencodableTextError(text, 'japanese')
    if (!jis) { out.push(...ESC_JIS); jis = true }
    out.push(code >> 8, code & 0xFF)
  }
  if (jis) out.push(...ESC_ASCII)
  return Uint8Array.from(out)
}

const utf8Encoder = new TextEncoder()

export const CHARSETS: Readonly<Record<CharsetName, Charset>> = {
  ascii: {
    name: 'ascii',
    terms: [],
    encode: (t) => singleByte('ascii', t, (cp) => cp < 0x80 ? cp : undefined),
    decode: (b) => new TextDecoder('ascii').decode(b)
  },
  latin1: {
    name: 'latin1',
    terms: ['ISO_IR 100'],
    encode: (t) => singleByte('latin1', t, (cp) => cp <= 0xFF ? cp : undefined),
    decode: (b) => new TextDecoder('latin1').decode(b)
  },
  utf8: {
    name: 'utf8',
    terms: ['ISO_IR 192'],
    encode: (t) => utf8Encoder.encode(t),
    decode: (b) => new TextDecoder('utf-8').decode(b)
  },
  greek: {
    name: 'greek',
    terms: ['ISO_IR 126'],
    encode: (t) => singleByte('greek', t, greekByte),
    decode: (b) => new TextDecoder('iso-8859-7').decode(b)
  },
  japanese: {
    name: 'japanese',
    // First value empty: the default repertoire is active at the start of every value (PS3.5 H.3.1).
    terms: ['', 'ISO 2022 IR 87'],
    encode: encodeIso2022Jp,
    decode: (b) => new TextDecoder('iso-2022-jp').decode(b)
  }
}

/** The charset a dataset declares with its SpecificCharacterSet value(s); undefined if none we write. */
export function charsetFromTerms (terms: readonly string[]): Charset | undefined {
  const key = terms.join('\\')
  return Object.values(CHARSETS).find((c) => c.terms.join('\\') === key)
}
