import { Buffer } from 'node:buffer'
import { TextDecoder } from 'node:util'
import { CharsetError } from './errors.ts'

/*
 * Text values in DICOM are bytes in the Specific Character Set (0008,0005), PS3.5 §6.1 and
 * Annexes H–K. TextDecoder alone cannot read them: with more than one term the value switches
 * character sets mid-string through ISO 2022 escape sequences, the active set falls back to the
 * first term's set at every value, name-component and line boundary (§6.1.2.5.3), and a 0x5C
 * byte is the value delimiter only while G0 holds a single-byte set — inside JIS X 0208 it is
 * half of a kanji (ま is 0x24 0x5E: a naive split on '^' cuts it in two). So we walk the bytes,
 * follow the escapes, and hand each run to the decoder that owns it.
 *
 * Decoding is lenient, because real files are: bytes >= 0x80 with no G1 set in force read as
 * Latin-1 (or as the multi-byte G1 set the terms announce, for writers that forget ESC $ ) C);
 * escapes are honoured even when their term is not listed; unknown escapes are dropped. Only a
 * Specific Character Set term we cannot map is an error, since guessing would corrupt names.
 */

export interface DicomTextDecoder {
  /**
   * Decode the raw bytes of one value field of VR `vr`. Multiple values stay joined by '\\';
   * trailing padding (spaces, NULs) of each value is trimmed.
   */
  decode (bytes: Uint8Array, vr: string): string
}

/** Decodes a run of bytes from one code set: GL bytes 0x21–0x7E for G0, GR bytes 0x80–0xFF for G1. */
type RunDecoder = (run: number[]) => string

interface CodeSet {
  readonly decode: RunDecoder
  /** single-byte G0 sets are the only ones in which 0x5C, '^' and '=' are delimiters */
  readonly singleByte: boolean
}

interface State { g0: CodeSet, g1: CodeSet | undefined }

const ESC = 0x1b
const BACKSLASH = 0x5c
const CARET = 0x5e
const EQUALS = 0x3d
/** single-valued VRs: 0x5C is text, not a delimiter (PS3.5 §6.2) */
const SINGLE_VALUED_VRS = new Set(['ST', 'LT', 'UT', 'UR'])

const decoders = new Map<string, TextDecoder>()
function textDecoder (label: string): TextDecoder {
  let d = decoders.get(label)
  if (d === undefined) {
    d = new TextDecoder(label)
    decoders.set(label, d)
  }
  return d
}

/** bytes as code points 0–255 (Node's 'latin1' is true ISO 8859-1, unlike the WHATWG label) */
function latin1 (run: Uint8Array | number[]): string {
  return (run instanceof Uint8Array ? Buffer.from(run.buffer, run.byteOffset, run.byteLength) : Buffer.from(run)).toString('latin1')
}
const identity: RunDecoder = latin1

/**
 * A true ISO 8859 part (or TIS-620): bytes below 0xA0 are the C1 controls / ASCII, not the
 * Windows code page that WHATWG substitutes for several of these labels (latin1 -> windows-1252,
 * iso-8859-9 -> windows-1254, tis-620 -> windows-874). The upper half is identical, so we take it
 * from TextDecoder.
 */
function iso8859 (label: string): RunDecoder {
  let table: string[] | undefined
  return (run) => {
    if (table === undefined) {
      const upper = textDecoder(label).decode(Uint8Array.from({ length: 0x60 }, (_, i) => 0xa0 + i))
      table = Array.from({ length: 256 }, (_, b) => b < 0xa0 ? String.fromCharCode(b) : upper[b - 0xa0] ?? '\ufffd')
    }
    const t = table
    return run.map((b) => t[b]).join('')
  }
}

function multiByte (label: string, map: (run: number[]) => number[]): RunDecoder {
  return (run) => textDecoder(label).decode(Uint8Array.from(map(run)))
}

const toGR = (run: number[]) => run.map((b) => b | 0x80)

const SETS = {
  ascii: { singleByte: true, decode: identity },
  // JIS X 0201 Roman (ISO-IR 14): ASCII with YEN SIGN and OVERLINE; a delimiter 0x5C never gets here
  romaji: { singleByte: true, decode: (run) => run.map((b) => b === 0x5c ? '\u00a5' : b === 0x7e ? '\u203e' : String.fromCharCode(b)).join('') },
  katakanaG0: { singleByte: true, decode: (run) => run.map((b) => b >= 0x21 && b <= 0x5f ? String.fromCharCode(0xff40 + b) : '\ufffd').join('') },
  jisx0208: { singleByte: false, decode: multiByte('euc-jp', toGR) },
  jisx0212: { singleByte: false, decode: multiByte('euc-jp', (run) => run.flatMap((b, i) => i % 2 === 0 ? [0x8f, b | 0x80] : [b | 0x80])) },
  katakana: { singleByte: true, decode: (run) => run.map((b) => b >= 0xa1 && b <= 0xdf ? String.fromCharCode(0xfec0 + b) : '\ufffd').join('') },
  latin1: { singleByte: true, decode: identity },
  latin2: { singleByte: true, decode: iso8859('iso-8859-2') },
  latin3: { singleByte: true, decode: iso8859('iso-8859-3') },
  latin4: { singleByte: true, decode: iso8859('iso-8859-4') },
  cyrillic: { singleByte: true, decode: iso8859('iso-8859-5') },
  arabic: { singleByte: true, decode: iso8859('iso-8859-6') },
  greek: { singleByte: true, decode: iso8859('iso-8859-7') },
  hebrew: { singleByte: true, decode: iso8859('iso-8859-8') },
  latin5: { singleByte: true, decode: iso8859('iso-8859-9') },
  latin9: { singleByte: true, decode: iso8859('iso-8859-15') },
  thai: { singleByte: true, decode: iso8859('tis-620') },
  ksx1001: { singleByte: false, decode: multiByte('euc-kr', toGR) },
  gb2312: { singleByte: false, decode: multiByte('gbk', toGR) }
} satisfies Record<string, CodeSet>

/** Escape sequences (the bytes after ESC) -> which register they designate, PS3.3 Tables C.12-3/C.12-4. */
const ESCAPES = new Map<string, { g0?: CodeSet, g1?: CodeSet }>([
  ['(B', { g0: SETS.ascii }],
  ['(J', { g0: SETS.romaji }],
  ['(I', { g0: SETS.katakanaG0 }],
  [')I', { g1: SETS.katakana }],
  ['$B', { g0: SETS.jisx0208 }],
  ['$@', { g0: SETS.jisx0208 }], // JIS C 6226-1978, read as its successor
  ['$(B', { g0: SETS.jisx0208 }],
  ['$(D', { g0: SETS.jisx0212 }],
  ['-A', { g1: SETS.latin1 }],
  ['-B', { g1: SETS.latin2 }],
  ['-C', { g1: SETS.latin3 }],
  ['-D', { g1: SETS.latin4 }],
  ['-L', { g1: SETS.cyrillic }],
  ['-G', { g1: SETS.arabic }],
  ['-F', { g1: SETS.greek }],
  ['-H', { g1: SETS.hebrew }],
  ['-M', { g1: SETS.latin5 }],
  ['-b', { g1: SETS.latin9 }],
  ['-T', { g1: SETS.thai }],
  ['$)C', { g1: SETS.ksx1001 }],
  ['$)A', { g1: SETS.gb2312 }]
])

/** ISO-IR number -> initial designations. 192 is UTF-8 and takes the non-ISO 2022 path. */
const IR_TERMS = new Map<number, { g0?: CodeSet, g1?: CodeSet }>([
  [6, { g0: SETS.ascii }],
  [100, { g1: SETS.latin1 }],
  [101, { g1: SETS.latin2 }],
  [109, { g1: SETS.latin3 }],
  [110, { g1: SETS.latin4 }],
  [144, { g1: SETS.cyrillic }],
  [127, { g1: SETS.arabic }],
  [126, { g1: SETS.greek }],
  [138, { g1: SETS.hebrew }],
  [148, { g1: SETS.latin5 }],
  [203, { g1: SETS.latin9 }],
  [166, { g1: SETS.thai }],
  [13, { g0: SETS.romaji, g1: SETS.katakana }],
  [87, { g0: SETS.jisx0208 }],
  [159, { g0: SETS.jisx0212 }],
  [149, { g1: SETS.ksx1001 }],
  [58, { g1: SETS.gb2312 }]
])

/** Character sets that allow no code extensions: the whole value goes to one TextDecoder. */
const WHOLE_VALUE_LABELS = new Map([['ISO_IR 192', 'utf-8'], ['GB18030', 'gb18030'], ['GBK', 'gbk']])

type Term = { whole: string } | { g0?: CodeSet, g1?: CodeSet }

function parseTerm (raw: string): Term {
  const term = raw.trim().toUpperCase()
  if (term === '') return { g0: SETS.ascii }
  const whole = WHOLE_VALUE_LABELS.get(term)
  if (whole !== undefined) return { whole }
  // 'ISO_IR 100' and 'ISO 2022 IR 100' name the same set; tolerate the usual spacing/underscore slips
  const match = /^ISO[\s_-]*(?:2022[\s_-]*)?IR[\s_-]*(\d+)$/.exec(term)
  if (match !== null) {
    const ir = Number(match[1])
    if (ir === 192) return { whole: 'utf-8' }
    const sets = IR_TERMS.get(ir)
    if (sets !== undefined) return sets
  }
  throw new CharsetError(`unsupported Specific Character Set term ${JSON.stringify(raw.slice(0, 64))}`)
}

/** Trailing padding of one value: spaces (text VRs) and NULs (writers that pad like UI). */
function trimPadding (value: string): string {
  return value.replace(/[ \0]+$/, '')
}

export function createTextDecoder (specificCharacterSet: readonly string[]): DicomTextDecoder {
  const terms = specificCharacterSet.map(parseTerm)
  const wholeTerm = terms.find((t) => 'whole' in t)
  if (wholeTerm !== undefined) {
    // UTF-8, GB18030 and GBK: the decoder sees every byte, so a 0x5C trail byte in a GBK character
    // stays inside it; only a decoded '\' is a delimiter (U+005C never comes from a multi-byte sequence)
    const decoder = textDecoder(wholeTerm.whole)
    return {
      decode (bytes, vr) {
        const text = decoder.decode(bytes)
        return SINGLE_VALUED_VRS.has(vr) ? trimPadding(text) : text.split('\\').map(trimPadding).join('\\')
      }
    }
  }

  const first = terms[0] ?? {}
  const initial: State = {
    g0: ('g0' in first ? first.g0 : undefined) ?? SETS.ascii,
    g1: 'g1' in first ? first.g1 : undefined
  }
  // GR bytes while no G1 set is in force: the first G1 set the terms announce, else Latin-1
  const grFallback = terms.map((t) => 'g1' in t ? t.g1 : undefined).find((s) => s !== undefined) ?? SETS.latin1
  return { decode: (bytes, vr) => decodeIso2022(bytes, vr, initial, grFallback) }
}

function decodeIso2022 (bytes: Uint8Array, vr: string, initial: State, grFallback: CodeSet): string {
  const multiValued = !SINGLE_VALUED_VRS.has(vr)
  if (initial.g0 === SETS.ascii && bytes.every((b) => b < 0x80 && b !== ESC)) {
    // the common case, plain ASCII: no escapes, no set to switch back to
    const text = latin1(bytes)
    return multiValued ? text.split('\\').map(trimPadding).join('\\') : trimPadding(text)
  }
  const personName = vr === 'PN'
  const values: string[] = []
  let value = ''
  let state: State = { ...initial }
  let run: number[] = []
  let runSet: CodeSet | undefined

  const flush = () => {
    if (runSet !== undefined && run.length > 0) value += runSet.decode(run)
    run = []
    runSet = undefined
  }
  const push = (b: number, set: CodeSet) => {
    if (set !== runSet) flush()
    runSet = set
    run.push(b)
  }

  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number
    if (b === ESC) {
      flush()
      // ESC, intermediate bytes 0x20–0x2F, one final byte 0x30–0x7E (ISO 2022 §13.1)
      let end = i + 1
      while (end < bytes.length && (bytes[end] as number) >= 0x20 && (bytes[end] as number) <= 0x2f) end++
      const final = bytes[end]
      if (final === undefined || final < 0x30 || final > 0x7e) end-- // truncated or malformed: drop what we saw
      const designation = ESCAPES.get(String.fromCharCode(...bytes.subarray(i + 1, end + 1)))
      if (designation?.g0 !== undefined) state.g0 = designation.g0
      if (designation?.g1 !== undefined) state.g1 = designation.g1
      i = end
    } else if (b < 0x20 || b === 0x7f) {
      // CR, LF, FF, TAB and any other control: the first term's sets are active again after it
      flush()
      value += String.fromCharCode(b)
      state = { ...initial }
    } else if (b === 0x20) {
      flush()
      value += ' '
    } else if (b < 0x80) {
      if (state.g0.singleByte && ((multiValued && b === BACKSLASH) || (personName && (b === CARET || b === EQUALS)))) {
        flush()
        if (b === BACKSLASH) {
          values.push(value)
          value = ''
        } else {
          value += String.fromCharCode(b)
        }
        state = { ...initial }
      } else {
        push(b, state.g0)
      }
    } else {
      push(b, state.g1 ?? grFallback)
    }
  }
  flush()
  values.push(value)
  return values.map(trimPadding).join('\\')
}
