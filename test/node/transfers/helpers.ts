import { createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Readable } from 'node:stream'
import { afterEach } from 'vitest'
import type { NodeIdentity } from '../../../protocol/identity.ts'
import { importFiles } from '../../../node/dicom/file-import.ts'
import { StudyStore, type StudyStoreInit } from '../../../node/store/study-store.ts'
import type { Clock } from '../../../node/transfers/clock.ts'
import type { ExchangeEvents } from '../../../node/transfers/events.ts'
import type { Exchange } from '../../../node/transfers/exchange.ts'
import { generateStudy, type GeneratedStudy, type StudySpec } from '../../../simulations/generator/index.ts'
import { PATIENCE_MS } from '../../helpers/patience.ts'

export const SENDER_URA = '11111111'
export const RECEIVER_URA = '22222222'

export async function makeIdentity (): Promise<NodeIdentity> {
  const privateKey = await generateKeyPair('Ed25519')
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey).toString() }
}

/** Things a test starts, stopped after it in reverse order. */
export function useCleanup (): (stop: () => Promise<void>) => void {
  const stops: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => {})
  })
  return (stop) => { stops.push(stop) }
}

export async function openStore (dir: string, onStop: (stop: () => Promise<void>) => void, init: Omit<StudyStoreInit, 'dir'> = {}): Promise<StudyStore> {
  const store = new StudyStore({ ...init, dir })
  await store.start()
  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    await store.stop()
  }
  onStop(stop)
  return store
}

/** A small study: two CT series and an SR and a PDF report. */
export function smallStudy (seed: number, overrides: Partial<StudySpec> = {}): StudySpec {
  return {
    seed,
    accession: `ACC${seed}`,
    studyDate: '20261020',
    patient: { id: `P${seed}`, issuer: 'HOSP-A', name: 'de Vries^Anna', bsn: '123456782', birthDate: '19711203', sex: 'F' },
    series: [
      { modality: 'CT', instances: 3, rows: 32, columns: 32 },
      { modality: 'CT', instances: 2, rows: 32, columns: 32 }
    ],
    reports: { sr: true, pdf: true },
    ...overrides
  }
}

export async function storeWithStudy (store: StudyStore, dir: string, spec: StudySpec): Promise<GeneratedStudy> {
  const study = await generateStudy(dir, spec)
  const summary = await importFiles(study.instances.map((i) => i.path), { store })
  if (summary.rejected.length > 0) throw new Error(`import rejected ${JSON.stringify(summary.rejected)}`)
  return study
}

/** A clock that only moves when told to; sleep records the delay and returns at once. */
export interface FakeClock extends Clock {
  advance: (ms: number) => void
  sleeps: number[]
}

export function fakeClock (start = Date.parse('2026-10-20T10:00:00Z')): FakeClock {
  let t = start
  const sleeps: number[] = []
  return {
    now: () => t,
    sleep: async (ms, signal) => {
      signal?.throwIfAborted()
      sleeps.push(ms)
      t += ms
    },
    random: () => 0.5,
    advance: (ms) => { t += ms },
    sleeps
  }
}

/** A readable of the given chunks. */
export function readableOf (...chunks: Buffer[]): Readable {
  return Readable.from(chunks, { objectMode: false })
}

/** Resolves with the first `name` event of `exchange` for which `accept` holds; `what` says which one, should it never come. */
export function nextEvent<K extends keyof ExchangeEvents> (exchange: Pick<Exchange, 'on' | 'off'>, name: K, accept: (...args: ExchangeEvents[K]) => boolean, what = `a ${name} event`): Promise<ExchangeEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`waited ${PATIENCE_MS / 1000} s for ${what}; it did not come`)) }, PATIENCE_MS)
    const listener = (...args: ExchangeEvents[K]): void => {
      if (!accept(...args)) return
      clearTimeout(timer)
      exchange.off(name, listener as never)
      resolve(args[0])
    }
    exchange.on(name, listener as never)
  })
}

/** SOP Instance UID -> SHA-256 of the stored bytes of a study: equal maps mean byte-identical studies. */
export async function instanceHashes (store: StudyStore, uid: string): Promise<Map<string, string>> {
  const hashes = new Map<string, string>()
  for (const instance of (await store.getStudy(uid)).instances) {
    const hash = createHash('sha256')
    for await (const chunk of store.openInstance(instance)) hash.update(chunk as Buffer)
    hashes.set(instance.sopInstanceUID, hash.digest('hex'))
  }
  return hashes
}
