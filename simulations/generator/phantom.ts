// Anatomy-like phantom frames: ellipses for body, fat, lungs, heart, liver, kidneys, vessels, spine and ribs,
// varying smoothly with slice position, plus mild noise. Looks and compresses like real images (random bytes
// would not: gzip and JPEG ratios, dedup and transfer benchmarks would all be wrong). Scanline-filled typed
// arrays: a 512x512 frame takes a few ms.
import { createPrng } from './prng.ts'

export type PhantomKind = 'ct' | 'mr' | 'xr' | 'us'

export interface PhantomInit {
  rows: number
  columns: number
  kind: PhantomKind
  /** Seed for noise and anatomy variation; same seed, same pixels. */
  seed: number
}

export interface Phantom {
  readonly kind: PhantomKind
  readonly rows: number
  readonly columns: number
  /** 12 for CT/MR/XR (stored in 16 bits), 8 for US. */
  readonly bitsStored: 8 | 12
  /**
   * Frame `index` of `count` (slice position index / (count - 1)). Written into `out` when given (rows *
   * columns of Uint16Array, Uint8Array for US) so a long multi-frame run makes no garbage; else a new array.
   */
  frame (index: number, count: number, out?: Uint16Array | Uint8Array): Uint16Array | Uint8Array
}

type Tissue = 'air' | 'fat' | 'soft' | 'lung' | 'bone' | 'marrow' | 'vessel' | 'contrast' | 'heart' | 'liver' |
  'kidney' | 'csf'

// Stored values per tissue. CT: HU + 1024 (RescaleIntercept -1024). MR: arbitrary positive T2-ish signal.
// XR: a projection look (MONOCHROME2, bone bright, lung dark).
const VALUES: Record<'ct' | 'mr' | 'xr', Record<Tissue, number>> = {
  ct: {
    air: 24, fat: 924, soft: 1064, lung: 174, bone: 1924, marrow: 1274, vessel: 1064, contrast: 1224,
    heart: 1074, liver: 1084, kidney: 1174, csf: 1039
  },
  mr: {
    air: 0, fat: 900, soft: 450, lung: 40, bone: 60, marrow: 700, vessel: 120, contrast: 1100, heart: 520,
    liver: 380, kidney: 620, csf: 1300
  },
  xr: {
    air: 150, fat: 1300, soft: 1500, lung: 750, bone: 2700, marrow: 2300, vessel: 900, contrast: 1900,
    heart: 1750, liver: 1650, kidney: 1600, csf: 1500
  }
}

const NOISE_SIZE = 1 << 16
const NOISE_MASK = NOISE_SIZE - 1

interface Canvas { base: Int16Array; rows: number; columns: number; scale: number }

// Fill an axis-aligned ellipse given in normalised coordinates (-1..1 across the shorter side, centred).
function ellipse (c: Canvas, cx: number, cy: number, rx: number, ry: number, value: number): void {
  if (rx <= 0 || ry <= 0) return
  const pcx = c.columns / 2 + cx * c.scale
  const pcy = c.rows / 2 + cy * c.scale
  const prx = rx * c.scale
  const pry = ry * c.scale
  const y0 = Math.max(0, Math.ceil(pcy - pry))
  const y1 = Math.min(c.rows - 1, Math.floor(pcy + pry))
  for (let y = y0; y <= y1; y++) {
    const dy = (y - pcy) / pry
    const half = prx * Math.sqrt(Math.max(0, 1 - dy * dy))
    const x0 = Math.max(0, Math.ceil(pcx - half))
    const x1 = Math.min(c.columns - 1, Math.floor(pcx + half))
    if (x1 >= x0) c.base.fill(value, y * c.columns + x0, y * c.columns + x1 + 1)
  }
}

// 0 outside [a, b], a smooth sine bump inside: organs appear and vanish gradually along the slice axis.
function bump (z: number, a: number, b: number): number {
  if (z <= a || z >= b) return 0
  return Math.sin(Math.PI * (z - a) / (b - a))
}

function paintAxial (c: Canvas, v: Record<Tissue, number>, z: number, phase: number): void {
  ellipse(c, 0, 0.05, 0.84, 0.62, v.fat)
  ellipse(c, 0, 0.05, 0.77, 0.55, v.soft)
  const lungs = bump(z, -0.1, 0.68)
  if (lungs > 0.05) {
    for (const side of [-1, 1]) {
      const lx = side * 0.36
      const rx = 0.27 * Math.sqrt(lungs)
      const ry = 0.37 * lungs
      ellipse(c, lx, -0.02, rx, ry, v.lung)
      // Pulmonary vessels: small blobs drifting with z.
      for (let k = 0; k < 7; k++) {
        const a = phase + k * 0.9 + z * 4 * side
        const r = 0.012 + 0.01 * ((k * 37) % 3)
        ellipse(c, lx + 0.6 * rx * Math.cos(a), -0.02 + 0.6 * ry * Math.sin(a * 1.3), r, r, v.vessel)
      }
    }
  }
  const heart = bump(z, 0.2, 0.62)
  if (heart > 0) ellipse(c, 0.08, 0.04, 0.22 * heart, 0.19 * heart, v.heart)
  const liver = bump(z, 0.45, 1.3)
  if (liver > 0) ellipse(c, -0.32, 0.02, 0.38 * liver, 0.3 * liver, v.liver)
  const spleen = bump(z, 0.5, 0.95)
  if (spleen > 0) ellipse(c, 0.42, 0.05, 0.14 * spleen, 0.2 * spleen, v.soft + (v.liver - v.soft) / 2)
  const kidneys = bump(z, 0.68, 1.1)
  if (kidneys > 0) {
    ellipse(c, -0.27, 0.33, 0.09 * kidneys, 0.13 * kidneys, v.kidney)
    ellipse(c, 0.27, 0.33, 0.09 * kidneys, 0.13 * kidneys, v.kidney)
  }
  ellipse(c, 0.05, 0.2, 0.055, 0.055, v.contrast) // aorta
  if (z > 0.3) ellipse(c, -0.09, 0.19, 0.05, 0.045, v.vessel) // vena cava
  // Spine: vertebral body (cortex, marrow), canal, spinous process.
  ellipse(c, 0, 0.36, 0.1, 0.09, v.bone)
  ellipse(c, 0, 0.36, 0.075, 0.066, v.marrow)
  ellipse(c, 0, 0.5, 0.035, 0.05, v.bone)
  ellipse(c, 0, 0.5, 0.022, 0.035, v.csf)
  ellipse(c, 0, 0.58, 0.025, 0.05, v.bone)
  const ribs = bump(z, -0.2, 0.8)
  if (ribs > 0) {
    for (let k = 0; k < 14; k++) {
      const a = Math.PI * (0.1 + 0.8 * (k % 7) / 6) + (k < 7 ? 0 : Math.PI) + z * 0.3
      ellipse(c, 0.72 * Math.cos(a), 0.05 + 0.5 * Math.sin(a), 0.03, 0.025, v.bone)
    }
  }
}

function paintChest (c: Canvas, v: Record<Tissue, number>, jitter: number): void {
  ellipse(c, 0, -0.85, 0.2, 0.3, v.soft)
  ellipse(c, -0.6, -0.6, 0.36, 0.22, v.soft)
  ellipse(c, 0.6, -0.6, 0.36, 0.22, v.soft)
  ellipse(c, jitter, 0.15, 0.82, 0.95, v.soft)
  for (const side of [-1, 1]) {
    ellipse(c, side * 0.36 + jitter, -0.1, 0.27, 0.5, v.lung)
    for (let k = 0; k < 10; k++) {
      ellipse(c, side * 0.36 + jitter, -0.5 + k * 0.1, 0.31, 0.016, v.marrow) // ribs
    }
    ellipse(c, side * 0.3, -0.55, 0.28, 0.03, v.bone) // clavicles
    ellipse(c, side * 0.86, -0.5, 0.1, 0.1, v.bone) // humeral heads
  }
  ellipse(c, 0.1 + jitter, 0.22, 0.28, 0.22, v.heart)
  ellipse(c, -0.3 + jitter, 0.66, 0.46, 0.22, v.liver)
  ellipse(c, jitter, 0.1, 0.07, 1.0, v.bone) // spine
}

function paintUltrasound (c: Canvas, z: number): void {
  ellipse(c, 0, 0.4, 1.6, 1.2, 70) // tissue
  ellipse(c, 0, 0.1, 1.3, 0.05, 150) // fascia
  ellipse(c, -0.15 + 0.1 * z, 0.5, 0.35, 0.25, 100) // organ
  ellipse(c, 0.25, 0.35 + 0.1 * z, 0.09, 0.07, 6) // vessel / cyst
  ellipse(c, -0.1, 0.55, 0.06 + 0.02 * z, 0.05, 4)
}

export function createPhantom (init: PhantomInit): Phantom {
  const { rows, columns, kind, seed } = init
  const c: Canvas = { base: new Int16Array(rows * columns), rows, columns, scale: Math.min(rows, columns) / 2 }
  const prng = createPrng(seed)
  const phase = prng.next() * Math.PI * 2
  // Approximately Gaussian noise (Irwin-Hall, 4 uniforms), made once; frames read it at random row offsets.
  const sigma = kind === 'ct' ? 6 : kind === 'mr' ? 8 : kind === 'xr' ? 6 : 0
  const noise = new Int16Array(NOISE_SIZE)
  const speckle = new Float32Array(kind === 'us' ? NOISE_SIZE : 0)
  for (let i = 0; i < NOISE_SIZE; i++) {
    const g = (prng.next() + prng.next() + prng.next() + prng.next() - 2) * Math.sqrt(3)
    noise[i] = Math.round(g * sigma)
    if (kind === 'us') speckle[i] = -Math.log(1 - prng.next() * 0.999) // exponential, mean ~1: speckle
  }
  // Per row [x0, x1) spans where the image has signal: a circular FOV for CT (outside: padding value 0),
  // a sector for US, the whole frame otherwise.
  const spanStart = new Int32Array(rows)
  const spanEnd = new Int32Array(rows).fill(columns)
  if (kind === 'ct' || kind === 'us') {
    for (let y = 0; y < rows; y++) {
      let half: number
      if (kind === 'ct') {
        const dy = (y + 0.5 - rows / 2) / (c.scale)
        half = Math.abs(dy) < 1 ? c.scale * Math.sqrt(1 - dy * dy) : -1
      } else {
        // Sector: 35 degrees either side of the probe axis, depth up to 0.9 of the frame.
        const depth = y - rows * 0.04
        const radius = rows * 0.9
        half = depth > 0 && depth < radius
          ? Math.min(depth * Math.tan(Math.PI * 35 / 180), Math.sqrt(radius * radius - depth * depth))
          : -1
      }
      spanStart[y] = half < 0 ? 0 : Math.max(0, Math.round(columns / 2 - half))
      spanEnd[y] = half < 0 ? 0 : Math.min(columns, Math.round(columns / 2 + half))
    }
  }
  // Smooth shading: MR coil sensitivity, XR heel effect, US depth attenuation.
  const rowGain = new Float32Array(rows).fill(1)
  const colGain = new Float32Array(columns).fill(1)
  for (let y = 0; y < rows; y++) {
    const t = y / rows
    if (kind === 'mr') rowGain[y] = 1.15 - 0.3 * t
    if (kind === 'xr') rowGain[y] = 1.05 - 0.1 * t
    if (kind === 'us') rowGain[y] = 1.1 - 0.5 * t
  }
  if (kind === 'mr') for (let x = 0; x < columns; x++) colGain[x] = 1 - 0.2 * ((2 * x / columns - 1) ** 2)
  const shaded = kind !== 'ct'

  return {
    kind,
    rows,
    columns,
    bitsStored: kind === 'us' ? 8 : 12,
    frame (index, count, target) {
      const z = count > 1 ? index / (count - 1) : 0.4
      const fp = createPrng((seed ^ Math.imul(index + 1, 0x9E3779B1)) >>> 0)
      c.base.fill(kind === 'us' ? 0 : VALUES[kind].air)
      if (kind === 'us') paintUltrasound(c, z)
      else if (kind === 'xr') paintChest(c, VALUES.xr, (fp.next() - 0.5) * 0.04)
      else paintAxial(c, VALUES[kind], z, phase)
      const max = kind === 'us' ? 255 : 4095
      const out = target ?? (kind === 'us' ? new Uint8Array(rows * columns) : new Uint16Array(rows * columns))
      if (out.length !== rows * columns) throw new RangeError('output frame has the wrong size')
      if (target !== undefined && (kind === 'ct' || kind === 'us')) out.fill(0) // outside the FOV / sector
      const base = c.base
      for (let y = 0; y < rows; y++) {
        const row = y * columns
        const n0 = fp.u32() & NOISE_MASK
        const rg = rowGain[y] as number
        const x1 = spanEnd[y] as number
        for (let x = spanStart[y] as number; x < x1; x++) {
          const n = (n0 + x) & NOISE_MASK
          let v: number
          if (kind === 'us') v = (base[row + x] as number) * rg * (speckle[n] as number)
          else if (shaded) v = (base[row + x] as number) * rg * (colGain[x] as number) + (noise[n] as number)
          else v = (base[row + x] as number) + (noise[n] as number)
          out[row + x] = v < 0 ? 0 : v > max ? max : v
        }
      }
      return out
    }
  }
}
