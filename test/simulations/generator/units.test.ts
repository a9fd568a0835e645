import { deflateSync } from 'node:zlib'
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  CHARSETS, buildPdf, createPhantom, createPrng, encodeRleFrame, generateBsn, isValidBsn, isValidUid, uidFrom
} from '../../../simulations/generator/index.ts'
import { encodeCodestreamStandIn } from '../../../simulations/generator/pixel-encodings.ts'
import { decodeRle } from './helpers.ts'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

describe('prng, uids, BSN', () => {
  it('is reproducible per seed', () => {
    const a = createPrng(42)
    const b = createPrng(42)
    const xs = Array.from({ length: 5 }, () => a.u32())
    expect(Array.from({ length: 5 }, () => b.u32())).toEqual(xs)
    expect(createPrng(43).u32()).not.toBe(xs[0])
  })

  it('makes valid 2.25 UIDs of at most 64 characters', () => {
    const prng = createPrng(1)
    for (let i = 0; i < 200; i++) {
      const uid = uidFrom(prng)
      expect(uid.startsWith('2.25.')).toBe(true)
      expect(isValidUid(uid)).toBe(true)
    }
  })

  it('generates BSNs that pass the 11-proof', () => {
    expect(isValidBsn('111222333')).toBe(true)
    expect(isValidBsn('123456782')).toBe(true)
    expect(isValidBsn('123456789')).toBe(false)
    const prng = createPrng(5)
    for (let i = 0; i < 100; i++) expect(isValidBsn(generateBsn(prng))).toBe(true)
  })
})

describe('charsets', () => {
  it('encodes Latin-1 (ISO_IR 100) one byte per character', () => {
    expect(hex(CHARSETS.latin1.encode('Müller^Jürgen'))).toBe(hex(Buffer.from('Müller^Jürgen', 'latin1')))
    expect(CHARSETS.latin1.decode(CHARSETS.latin1.encode('Ørsted^Zoë'))).toBe('Ørsted^Zoë')
    expect(CHARSETS.latin1.terms).toEqual(['ISO_IR 100'])
  })

  it('encodes Greek as ISO 8859-7 (ISO_IR 126)', () => {
    const bytes = CHARSETS.greek.encode('Dionysios=Διονυσιος')
    expect(hex(bytes.subarray(10))).toBe('c4e9efedf5f3e9eff2')
    expect(new TextDecoder('iso-8859-7').decode(bytes)).toBe('Dionysios=Διονυσιος')
  })

  it('encodes Japanese exactly as PS3.5 H.3.1 (ISO 2022 IR 87)', () => {
    const name = 'Yamada^Tarou=山田^太郎=やまだ^たろう'
    const expected = Buffer.concat([
      Buffer.from('Yamada^Tarou='),
      Buffer.from('1b24423b3345441b2842', 'hex'), Buffer.from('^'),
      Buffer.from('1b244242404f3a1b2842', 'hex'), Buffer.from('='),
      Buffer.from('1b24422464245e24401b2842', 'hex'), Buffer.from('^'),
      Buffer.from('1b2442243f246d24261b2842', 'hex')
    ])
    const bytes = CHARSETS.japanese.encode(name)
    expect(hex(bytes)).toBe(hex(expected))
    expect(new TextDecoder('iso-2022-jp').decode(bytes)).toBe(name)
    expect(CHARSETS.japanese.terms).toEqual(['', 'ISO 2022 IR 87'])
  })

  it('refuses text the charset cannot hold, with a code', () => {
    expect(() => CHARSETS.latin1.encode('Ayşe')).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_UNENCODABLE_TEXT' }))
    expect(() => CHARSETS.ascii.encode('Zoë')).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_UNENCODABLE_TEXT' }))
  })
})

describe('phantom', () => {
  it('makes 12-bit CT/MR/XR and 8-bit US frames', () => {
    for (const kind of ['ct', 'mr', 'xr', 'us'] as const) {
      const p = createPhantom({ rows: 128, columns: 128, kind, seed: 3 })
      const f = p.frame(3, 10)
      const max = Array.from(f).reduce((m, v) => Math.max(m, v), 0)
      expect(max).toBeLessThanOrEqual(kind === 'us' ? 255 : 4095)
      expect(max).toBeGreaterThan(kind === 'us' ? 100 : 1000) // real contrast, not a flat image
      expect(p.bitsStored).toBe(kind === 'us' ? 8 : 12)
    }
  })

  it('compresses like an image, unlike random bytes', () => {
    const f = createPhantom({ rows: 256, columns: 256, kind: 'ct', seed: 1 }).frame(5, 20)
    const bytes = new Uint8Array(f.buffer)
    expect(bytes.length / deflateSync(bytes).length).toBeGreaterThan(2)
    const noise = randomBytes(bytes.length)
    expect(noise.length / deflateSync(noise).length).toBeLessThan(1.05)
  })

  it('varies smoothly between slices and is reproducible', () => {
    const p = createPhantom({ rows: 128, columns: 128, kind: 'ct', seed: 9 })
    const a = p.frame(10, 100)
    const b = p.frame(11, 100)
    const far = p.frame(80, 100)
    const diff = (x: Uint16Array | Uint8Array, y: Uint16Array | Uint8Array): number =>
      Array.from(x).reduce((s, v, i) => s + Math.abs(v - (y[i] as number)), 0) / x.length
    expect(diff(a, b)).toBeLessThan(diff(a, far))
    expect(hex(new Uint8Array(createPhantom({ rows: 128, columns: 128, kind: 'ct', seed: 9 }).frame(10, 100).buffer)))
      .toBe(hex(new Uint8Array(a.buffer)))
  })

  it('makes a 512x512 frame in a few ms', () => {
    const p = createPhantom({ rows: 512, columns: 512, kind: 'ct', seed: 1 })
    const out = new Uint16Array(512 * 512)
    p.frame(0, 50, out)
    const t0 = performance.now()
    for (let i = 0; i < 20; i++) p.frame(i, 20, out)
    expect((performance.now() - t0) / 20).toBeLessThan(25) // ~2-3 ms here; lenient for slow CI
  })
})

describe('pixel encodings', () => {
  it('RLE-encodes losslessly, with even segments', () => {
    const f = createPhantom({ rows: 60, columns: 70, kind: 'mr', seed: 2 }).frame(1, 3) as Uint16Array
    const rle = encodeRleFrame(f, { rows: 60, columns: 70, bitsStored: 12 })
    expect(rle.length % 2).toBe(0)
    const dv = new DataView(rle.buffer, rle.byteOffset)
    expect(dv.getUint32(0, true)).toBe(2)
    expect(dv.getUint32(4, true)).toBe(64)
    expect(dv.getUint32(8, true) % 2).toBe(0)
    expect(hex(decodeRle(rle, 60 * 70, 2))).toBe(hex(new Uint8Array(f.buffer)))
    const us = createPhantom({ rows: 33, columns: 47, kind: 'us', seed: 2 }).frame(0, 1) as Uint8Array
    expect(hex(decodeRle(encodeRleFrame(us, { rows: 33, columns: 47, bitsStored: 8 }), 33 * 47, 1))).toBe(hex(us))
  })

  it('wraps JPEG-family stand-ins in the right markers', () => {
    const f = createPhantom({ rows: 64, columns: 64, kind: 'ct', seed: 2 }).frame(0, 1)
    const info = { rows: 64, columns: 64, bitsStored: 12 }
    for (const [kind, soi, sof] of [['jpeg-baseline', 'ffd8', 'ffc0'], ['jpeg-ls', 'ffd8', 'fff7'], ['jpeg2000', 'ff4f', 'ff51']] as const) {
      const cs = encodeCodestreamStandIn(kind, f, info)
      expect(hex(cs.subarray(0, 2))).toBe(soi)
      expect(hex(cs.subarray(cs.length - 2))).toBe('ffd9')
      expect(hex(cs)).toContain(sof)
      expect(cs.length % 2).toBe(0)
    }
  })
})

describe('PDF', () => {
  it('writes a one-page PDF whose xref offsets point at its objects', () => {
    const pdf = Buffer.from(buildPdf(['Line (1)', 'Zoë']))
    const text = pdf.toString('latin1')
    expect(text.startsWith('%PDF-1.4')).toBe(true)
    expect(text).toContain('(Radiology report) Tj')
    const startxref = Number(/startxref\n(\d+)/.exec(text)?.[1])
    expect(text.slice(startxref, startxref + 4)).toBe('xref')
    const entries = [...text.slice(startxref).matchAll(/^(\d{10}) 00000 n $/gm)].map((m) => Number(m[1]))
    expect(entries).toHaveLength(5)
    entries.forEach((off, i) => expect(text.slice(off, off + 8)).toBe(`${i + 1} 0 obj\n`))
    const length = Number(/\/Length (\d+)/.exec(text)?.[1])
    const streamAt = text.indexOf('stream\n') + 7
    expect(text.slice(streamAt + length, streamAt + length + 10)).toBe('\nendstream')
  })
})
