import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { createLibp2p } from 'libp2p'
import { MUXER_DEFAULTS, readBufferFor } from '../../node/p2p/host.ts'
import { YAMUX_INITIAL_STREAM_WINDOW } from '../../protocol/p2p/ids.ts'

/*
 * The libp2p stack of the bare-libp2p transfer benchmark: TCP, Noise and Yamux with the settings of
 * node/p2p/host.ts (its MUXER_DEFAULTS), minus what a node adds on top (directory gating, peer
 * store from the directory). For looking past the defaults, the benchmark's environment may change
 * them (both ends read the same variables):
 *   BENCH_YAMUX_MAX_MESSAGE_SIZE      bytes (host.ts: 256 KiB)
 *   BENCH_YAMUX_MAX_STREAM_WINDOW     bytes (host.ts: 4 MiB)
 *   BENCH_ENCRYPTER                   noise (host.ts) or tls (@libp2p/tls: TLS 1.3 by node:tls, the
 *                                     certificate bound to the Ed25519 identity)
 */

export type BenchEncrypter = 'noise' | 'tls'

export interface BenchStackSettings {
  maxMessageSize: number
  maxStreamWindowSize: number
  maxReadBufferLength: number
  maxWriteBufferLength: number
  keepAliveIntervalMs: number
  encrypter: BenchEncrypter
}

function envNumber (env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`${name} must be a positive integer, not ${raw}`)
  return n
}

function encrypterOf (env: NodeJS.ProcessEnv): BenchEncrypter {
  const raw = env.BENCH_ENCRYPTER
  if (raw === undefined || raw === '') return 'noise'
  if (raw === 'noise' || raw === 'tls') return raw
  throw new RangeError(`BENCH_ENCRYPTER must be noise or tls, not ${raw}`)
}

/** host.ts's defaults, with the benchmark's overrides from the environment. */
export function benchStackSettings (env: NodeJS.ProcessEnv = process.env): BenchStackSettings {
  const maxStreamWindowSize = envNumber(env, 'BENCH_YAMUX_MAX_STREAM_WINDOW', MUXER_DEFAULTS.maxStreamWindowSize)
  return {
    ...MUXER_DEFAULTS,
    maxMessageSize: envNumber(env, 'BENCH_YAMUX_MAX_MESSAGE_SIZE', MUXER_DEFAULTS.maxMessageSize),
    maxStreamWindowSize,
    maxReadBufferLength: readBufferFor(maxStreamWindowSize),
    encrypter: encrypterOf(env)
  }
}

/** A libp2p node with the node's transport stack and a fresh Ed25519 identity; not started. */
export async function createBenchLibp2p (listen: string[], settings: BenchStackSettings = benchStackSettings()): Promise<Libp2p> {
  return createLibp2p({
    start: false,
    privateKey: await generateKeyPair('Ed25519'),
    nodeInfo: { name: 'beeldnet-bench' },
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [settings.encrypter === 'tls' ? tls() : noise()],
    streamMuxers: [yamux({
      maxMessageSize: settings.maxMessageSize,
      enableKeepAlive: true,
      keepAliveInterval: settings.keepAliveIntervalMs,
      streamOptions: {
        initialStreamWindowSize: YAMUX_INITIAL_STREAM_WINDOW,
        maxStreamWindowSize: settings.maxStreamWindowSize,
        maxReadBufferLength: settings.maxReadBufferLength,
        maxWriteBufferLength: settings.maxWriteBufferLength,
        inactivityTimeout: 120_000
      }
    })]
  })
}
