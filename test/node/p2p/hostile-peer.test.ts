import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { setTimeout as delay } from 'node:timers/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Stream } from '@libp2p/interface'
import { describe, expect, it } from 'vitest'
import { buildEnrolment } from '../../../node/directory/enrol.ts'
import { createDataChannel, type DataChannel } from '../../../node/p2p/data-channel.ts'
import { createFramedStream, type FramedStream } from '../../../node/p2p/stream-io.ts'
import type { StudyStore } from '../../../node/store/study-store.ts'
import { createExchange, type Exchange } from '../../../node/transfers/exchange.ts'
import { buildManifest } from '../../../node/transfers/manifest.ts'
import { signManifest, type Manifest, type SignedManifest } from '../../../protocol/exchange/manifest.ts'
import { PROTOCOLS } from '../../../protocol/p2p/ids.ts'
import {
  encodeControl, encodeData, encodeEnd, encodeFrame, FRAME_HEADER_BYTES, MAX_CONTROL_BYTES, MAX_DATA_FRAME_BYTES
} from '../../../protocol/p2p/framing.ts'
import type { Change } from '../../../protocol/registry/documents.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'
import { instanceHashes, nextEvent, openStore, smallStudy, storeWithStudy, useCleanup } from '../transfers/helpers.ts'
import { silent, useP2PNetwork, type TestNetwork, type TestNode } from './p2p-fixtures.ts'
import { until } from '../../helpers/patience.ts'

/*
 * A hostile peer: an ADMITTED node (its own key, listed active in the directory, so gating lets it
 * in) that speaks /beeldnet/push/1.0.0 badly, writing frames with the framing functions straight
 * onto the stream. Against it, a real receiving node: the real exchange (push handler, receive
 * sessions, transfer store) over a real StudyStore and a real libp2p host. Every misbehaviour must
 * reset the stream with its code (the double reads it as BEELDNET_ERR_REMOTE_ABORT carrying the
 * receiver's code), nothing it sent may become visible, and an honest node's push to the same
 * receiver goes on meanwhile.
 */

const network = useP2PNetwork()
const tempDir = useTempDirs()
const cleanup = useCleanup()

const RECEIVER_URA = '10000001'
const HOSTILE_URA = '10000002'
const HONEST_URA = '10000003'
/** The receiver's stall timeout: short, so a stalling peer is cut off within the test. */
const STALL_MS = 1000

interface Peer {
  node: TestNode
  store: StudyStore
  exchange: Exchange
}

/** Where instance bytes go: the push stream, or the TLS data channel (both are served; each run picks one). */
type DataPath = 'stream' | 'tls'

/** The hostile node's own data channel, which it connects with as a well-behaved sender would. */
let hostileChannel: DataChannel | undefined

async function startDataChannel (node: TestNode): Promise<DataChannel> {
  const channel = createDataChannel({ privateKey: node.identity.privateKey, peerId: node.peerId, gating: node.host.gating, directory: node.directory, logger: silent }, { host: '127.0.0.1', port: 0 })
  await channel.start()
  cleanup(async () => channel.stop())
  return channel
}

interface HostileStudy {
  studyInstanceUID: string
  /** the honest manifest of the study, as the hostile node's store would build it */
  manifest: Manifest
  /** instance bytes by SHA-256 */
  bytes: Map<string, Buffer>
}

/** Admits `node` as institution `ura`, with a radiology department to send to. */
async function admit (net: TestNetwork, node: TestNode, ura: string): Promise<Change> {
  return {
    action: 'admit',
    enrolment: await buildEnrolment(node.identity, {
      network: net.gov.root.network, ura, name: `Ziekenhuis ${node.name}`, addresses: [node.address], departments: [{ code: 'RAD', name: 'Radiologie' }]
    })
  }
}

/** A real node's exchange and store on a test host. */
async function startPeer (node: TestNode, path: DataPath, stallTimeoutMs?: number): Promise<Peer> {
  const dir = await tempDir(`hostile-${node.name}`)
  const store = await openStore(join(dir, 'data'), cleanup)
  const dataChannel = path === 'tls' ? await startDataChannel(node) : undefined
  const exchange = createExchange({ host: node.host, store, identity: node.identity, logger: silent, dataChannel }, {
    dataDir: dir,
    stream: stallTimeoutMs === undefined ? {} : { stallTimeoutMs },
    queue: { backoffInitialMs: 100 }
  })
  await exchange.start()
  cleanup(async () => exchange.stop())
  return { node, store, exchange }
}

async function setup (path: DataPath, options: { honestStallMs?: number } = {}): Promise<{ receiver: Peer, honest: Peer, hostile: TestNode, study: HostileStudy }> {
  const net = network()
  const receiverNode = await net.startNode('receiver')
  const hostile = await net.startNode('hostile')
  const honestNode = await net.startNode('honest')
  const v1 = net.next(undefined, [await admit(net, receiverNode, RECEIVER_URA), await admit(net, hostile, HOSTILE_URA), await admit(net, honestNode, HONEST_URA)])
  for (const n of [receiverNode, hostile, honestNode]) await n.directory.acceptDirectory(v1.envelope, 'test')
  const receiver = await startPeer(receiverNode, path, STALL_MS)
  const honest = await startPeer(honestNode, path, options.honestStallMs)
  hostileChannel = path === 'tls' ? await startDataChannel(hostile) : undefined

  // The hostile node has a real study; the manifests it signs start from the honest one.
  const dir = await tempDir('hostile-study')
  const store = await openStore(join(dir, 'data'), cleanup)
  const generated = await storeWithStudy(store, join(dir, 'generated'), smallStudy(4242))
  const manifest = await buildManifest({ store }, generated.studyInstanceUID, {
    sender: { ura: HOSTILE_URA, peerId: hostile.peerId }, destination: { ura: RECEIVER_URA, department: 'RAD' }, reason: 'verwijzing'
  })
  const bytes = new Map<string, Buffer>()
  for (const instance of generated.instances) {
    const data = await readFile(instance.path)
    bytes.set(createHash('sha256').update(data).digest('hex'), data)
  }
  expect([...bytes.keys()].sort()).toEqual(manifest.instances.map((i) => i.sha256).sort())
  return { receiver, honest, hostile, study: { studyInstanceUID: generated.studyInstanceUID, manifest, bytes } }
}

/** A new transfer id for each offer: each is a transfer of its own at the receiver. */
function withNewTransfer (manifest: Manifest, changes: Partial<Manifest> = {}): Manifest {
  return { ...manifest, transferId: randomBytes(16).toString('hex'), ...changes }
}

/** Data frames for `bytes`, at most the frame limit each. */
function dataFrames (bytes: Uint8Array): Uint8Array[] {
  const frames: Uint8Array[] = []
  for (let at = 0; at < bytes.byteLength; at += MAX_DATA_FRAME_BYTES) frames.push(encodeData(bytes.subarray(at, at + MAX_DATA_FRAME_BYTES)))
  return frames
}

/**
 * The hostile side of one push stream. It writes raw frames straight onto the libp2p stream (no
 * backpressure, no schema: whatever the test says) and reads what the receiver answers.
 */
class HostileStream {
  readonly stream: Stream
  private readonly reader: FramedStream

  constructor (stream: Stream) {
    this.stream = stream
    // Long enough that only the receiver's timeout matters.
    this.reader = createFramedStream(stream, { stallTimeoutMs: 30_000 })
  }

  static async open (hostile: TestNode, receiver: TestNode): Promise<HostileStream> {
    return new HostileStream(await hostile.host.dialProtocol(receiver.peerId, PROTOCOLS.push))
  }

  send (...frames: Uint8Array[]): void {
    for (const frame of frames) {
      // A hostile peer keeps writing whatever the receiver did; once reset, there is nowhere to write.
      if (this.stream.writeStatus !== 'writable') return
      this.stream.send(frame)
    }
  }

  /** push-offer (offering the TLS data channel, if asked) and the manifest as a run of data frames */
  offer (signed: unknown, path: DataPath = 'stream'): void {
    const bytes = new TextEncoder().encode(JSON.stringify(signed))
    this.send(encodeControl({ type: 'beeldnet/push-offer', bytes: bytes.byteLength, ...(path === 'tls' ? { dataChannels: ['tls'] } : {}) }), ...dataFrames(bytes), encodeEnd())
  }

  /** the receiver's answer run (accept with what it holds, or decline) */
  async answer (): Promise<{ decision: string, have?: string[], dataChannel?: { port: number, token: string } }> {
    const chunks: Uint8Array[] = []
    for (;;) {
      const frame = await this.reader.next()
      if (frame === undefined) throw new Error('the receiver closed the stream before answering')
      if (frame.type === 'end') break
      if (frame.type !== 'data') throw new Error(`expected the answer run, got a ${frame.type} frame`)
      chunks.push(frame.bytes)
    }
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as { decision: string, have?: string[], dataChannel?: { port: number, token: string } }
  }

  /** push-instance naming `sha256`, then `bytes` as data frames and (unless told not to) the end frame */
  instance (sha256: string, bytes: Uint8Array, end = true): void {
    this.send(encodeControl({ type: 'beeldnet/push-instance', sha256 }), ...dataFrames(bytes))
    if (end) this.send(encodeEnd())
  }

  /** Reads on (acks and all) until the stream fails; returns that error. */
  async refusal (): Promise<unknown> {
    for (;;) {
      let frame
      try {
        frame = await this.reader.next()
      } catch (err) {
        return err
      }
      if (frame === undefined) return new Error('the receiver ended the stream without refusing')
    }
  }
}

/** The error the double sees when the receiver resets the stream with `code`. */
function remoteAbort (code: string): unknown {
  return expect.objectContaining({ code: 'BEELDNET_ERR_REMOTE_ABORT', remoteCode: code })
}

async function filesUnder (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])
  return entries.filter((e) => e.isFile()).map((e) => e.name)
}

/**
 * Nothing of the hostile transfer shows: the study is not listed, no blob of it is in the store,
 * the store's temp files are gone, and the incoming area holds nothing but `kept` (instances it
 * verified, waiting for a resume that will never be committed without the rest).
 */
async function expectNothingVisible (receiver: Peer, study: HostileStudy, kept: string[] = []): Promise<void> {
  const listed = (await receiver.store.findStudies()).map((s) => s.studyInstanceUID)
  expect(listed).not.toContain(study.studyInstanceUID)
  await expect(receiver.store.getStudy(study.studyInstanceUID)).rejects.toMatchObject({ code: 'BEELDNET_ERR_STUDY_NOT_FOUND' })
  for (const sha of study.bytes.keys()) expect(await receiver.store.blobs.has(sha), `blob ${sha}`).toBe(false)
  const tmp = join(receiver.store.blobs.dir, 'tmp')
  await until(async () => (await filesUnder(tmp)).length === 0, 'the store\'s temp files to go')
  expect((await filesUnder(join(receiver.store.blobs.dir, 'incoming'))).sort()).toEqual([...kept].sort())
}

/** The receiver's record of the hostile transfer, once it noted `code` as its last error. */
async function expectRecordedError (receiver: Peer, hostile: TestNode, transferId: string, code: string): Promise<void> {
  await until(async () => (await receiver.exchange.incoming.get(hostile.peerId, transferId))?.lastError !== undefined, 'the receiver to record the error')
  expect(await receiver.exchange.incoming.get(hostile.peerId, transferId)).toMatchObject({ state: 'receiving', lastError: { code } })
}

/**
 * Offers a validly signed manifest and waits for the accept answer (everything missing). On the
 * TLS path it then opens the data connection with the answer's token, as a sender does, and what it
 * sends from there goes over that connection.
 */
async function acceptedOffer (hostile: TestNode, receiver: Peer, manifest: Manifest, path: DataPath): Promise<HostileStream> {
  const s = await HostileStream.open(hostile, receiver.node)
  s.offer(await signManifest(manifest, hostile.identity.privateKey), path)
  const answer = await s.answer()
  expect(answer).toMatchObject({ decision: 'accept', have: [] })
  if (path === 'stream') return s
  expect(answer.dataChannel).toMatchObject({ port: expect.any(Number), token: expect.any(String) })
  const data = await hostileChannel!.connect(receiver.node.peerId, { host: '127.0.0.1', port: answer.dataChannel!.port }, answer.dataChannel!.token)
  s.send(encodeControl({ type: 'beeldnet/push-data', via: 'tls' }))
  return new HostileStream(data)
}

describe.each<DataPath>(['stream', 'tls'])('a hostile admitted peer pushing to a real node, instances over the %s', (path) => {
  it('an instance whose bytes do not match its SHA-256: INSTANCE_HASH, and nothing of it is kept', async () => {
    const { receiver, hostile, study } = await setup(path)
    const manifest = withNewTransfer(study.manifest)
    const s = await acceptedOffer(hostile, receiver, manifest, path)
    const first = manifest.instances[0]!
    const tampered = Buffer.from(study.bytes.get(first.sha256)!)
    tampered[tampered.length - 1]! ^= 0xff
    s.instance(first.sha256, tampered)
    expect(await s.refusal()).toEqual(remoteAbort('BEELDNET_ERR_INSTANCE_HASH'))
    await expectRecordedError(receiver, hostile, manifest.transferId, 'BEELDNET_ERR_INSTANCE_HASH')
    await expectNothingVisible(receiver, study)
  })

  it('an instance the manifest does not list: INSTANCE_NOT_IN_MANIFEST', async () => {
    const { receiver, hostile, study } = await setup(path)
    const manifest = withNewTransfer(study.manifest)
    const s = await acceptedOffer(hostile, receiver, manifest, path)
    const extra = randomBytes(2048)
    s.instance(createHash('sha256').update(extra).digest('hex'), extra)
    expect(await s.refusal()).toEqual(remoteAbort('BEELDNET_ERR_INSTANCE_NOT_IN_MANIFEST'))
    await expectRecordedError(receiver, hostile, manifest.transferId, 'BEELDNET_ERR_INSTANCE_NOT_IN_MANIFEST')
    await expectNothingVisible(receiver, study)
  })

  it('more bytes than the manifest declares: INSTANCE_OVERRUN', async () => {
    const { receiver, hostile, study } = await setup(path)
    const manifest = withNewTransfer(study.manifest)
    const s = await acceptedOffer(hostile, receiver, manifest, path)
    const first = manifest.instances[0]!
    s.instance(first.sha256, Buffer.concat([study.bytes.get(first.sha256)!, randomBytes(4096)]))
    expect(await s.refusal()).toEqual(remoteAbort('BEELDNET_ERR_INSTANCE_OVERRUN'))
    await expectRecordedError(receiver, hostile, manifest.transferId, 'BEELDNET_ERR_INSTANCE_OVERRUN')
    await expectNothingVisible(receiver, study)
  })

  it('fewer bytes than declared, or another instance\'s bytes under a listed hash: INSTANCE_TRUNCATED, INSTANCE_HEADER_MISMATCH', async () => {
    const { receiver, hostile, study } = await setup(path)
    const short = withNewTransfer(study.manifest)
    const s1 = await acceptedOffer(hostile, receiver, short, path)
    const first = short.instances[0]!
    s1.instance(first.sha256, study.bytes.get(first.sha256)!.subarray(0, first.size - 1))
    expect(await s1.refusal()).toEqual(remoteAbort('BEELDNET_ERR_INSTANCE_TRUNCATED'))

    // A validly signed manifest that lists the bytes of one image under another image's UIDs.
    const images = study.manifest.instances.filter((i) => !i.report)
    const [x, y] = [images[0]!, images[1]!]
    const swapped = withNewTransfer(study.manifest, {
      instances: study.manifest.instances.map((i) => i === x ? { ...x, sha256: y.sha256, size: y.size } : i === y ? { ...y, sha256: x.sha256, size: x.size } : i)
    })
    const s2 = await acceptedOffer(hostile, receiver, swapped, path)
    s2.instance(y.sha256, study.bytes.get(y.sha256)!)
    expect(await s2.refusal()).toEqual(remoteAbort('BEELDNET_ERR_INSTANCE_HEADER_MISMATCH'))
    await expectRecordedError(receiver, hostile, swapped.transferId, 'BEELDNET_ERR_INSTANCE_HEADER_MISMATCH')
    await expectNothingVisible(receiver, study)
  })

  it('a frame header announcing more than the limit, before the offer or inside an instance: FRAME_TOO_LARGE', async () => {
    const { receiver, hostile, study } = await setup(path)
    // A control frame header of 64 KiB + 1, with only a little payload behind it: refused on the header.
    const s1 = await HostileStream.open(hostile, receiver.node)
    const header = new Uint8Array(FRAME_HEADER_BYTES)
    new DataView(header.buffer).setUint32(0, MAX_CONTROL_BYTES + 1)
    header[4] = 1
    s1.send(header, new Uint8Array(100))
    expect(await s1.refusal()).toEqual(remoteAbort('BEELDNET_ERR_FRAME_TOO_LARGE'))

    // A data frame of 256 KiB + 1 in the middle of an instance (encodeFrame refuses to make one: written by hand).
    const manifest = withNewTransfer(study.manifest)
    const s2 = await acceptedOffer(hostile, receiver, manifest, path)
    const first = manifest.instances[0]!
    s2.instance(first.sha256, study.bytes.get(first.sha256)!.subarray(0, 1000), false)
    const big = new Uint8Array(FRAME_HEADER_BYTES + 1024)
    new DataView(big.buffer).setUint32(0, MAX_DATA_FRAME_BYTES + 1)
    big[4] = 2
    s2.send(big)
    expect(await s2.refusal()).toEqual(remoteAbort('BEELDNET_ERR_FRAME_TOO_LARGE'))
    await expectRecordedError(receiver, hostile, manifest.transferId, 'BEELDNET_ERR_FRAME_TOO_LARGE')
    await expectNothingVisible(receiver, study)
  })

  it('garbage: bytes that are no frame, a control frame that is no JSON, JSON that fits no step: FRAME_MALFORMED, SCHEMA', async () => {
    const { receiver, hostile, study } = await setup(path)
    const s1 = await HostileStream.open(hostile, receiver.node)
    s1.send(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: receiver\r\n\r\n'))
    expect(await s1.refusal()).toEqual(remoteAbort('BEELDNET_ERR_FRAME_MALFORMED'))

    const s2 = await HostileStream.open(hostile, receiver.node)
    s2.send(encodeFrame('control', new Uint8Array([0xff, 0xfe, 0x7b, 0x00])))
    expect(await s2.refusal()).toEqual(remoteAbort('BEELDNET_ERR_FRAME_MALFORMED'))

    const s3 = await HostileStream.open(hostile, receiver.node)
    s3.send(encodeControl({ type: 'beeldnet/push-offer', bytes: 10, evil: true }))
    expect(await s3.refusal()).toEqual(remoteAbort('BEELDNET_ERR_SCHEMA'))

    // an offer whose manifest run is not JSON
    const s4 = await HostileStream.open(hostile, receiver.node)
    s4.send(encodeControl({ type: 'beeldnet/push-offer', bytes: 64 }), encodeData(randomBytes(64)), encodeEnd())
    expect(await s4.refusal()).toEqual(remoteAbort('BEELDNET_ERR_SCHEMA'))

    // after an accepted offer: garbage in the middle of an instance, and a step that fits no schema
    const manifest = withNewTransfer(study.manifest)
    const s5 = await acceptedOffer(hostile, receiver, manifest, path)
    const first = manifest.instances[0]!
    s5.instance(first.sha256, study.bytes.get(first.sha256)!.subarray(0, 500), false)
    s5.send(randomBytes(4), new Uint8Array([0x09]), randomBytes(64))
    expect(await s5.refusal()).toEqual(remoteAbort('BEELDNET_ERR_FRAME_MALFORMED'))
    await expectRecordedError(receiver, hostile, manifest.transferId, 'BEELDNET_ERR_FRAME_MALFORMED')

    const s6 = await acceptedOffer(hostile, receiver, withNewTransfer(study.manifest), path)
    s6.send(encodeControl({ type: 'beeldnet/push-instance', sha256: '../../etc/passwd' }))
    expect(await s6.refusal()).toEqual(remoteAbort('BEELDNET_ERR_SCHEMA'))
    await expectNothingVisible(receiver, study)
  })

  it('a stall in the middle of an instance, past the receiver\'s stall timeout: STREAM_STALLED', async () => {
    const { receiver, hostile, study } = await setup(path)
    const manifest = withNewTransfer(study.manifest)
    const s = await acceptedOffer(hostile, receiver, manifest, path)
    const first = manifest.instances[0]!
    s.instance(first.sha256, study.bytes.get(first.sha256)!.subarray(0, Math.floor(first.size / 2)), false)
    // ...and nothing more
    expect(await s.refusal()).toEqual(remoteAbort('BEELDNET_ERR_STREAM_STALLED'))
    await expectRecordedError(receiver, hostile, manifest.transferId, 'BEELDNET_ERR_STREAM_STALLED')
    await expectNothingVisible(receiver, study)
  })

  it('claims to be done before sending everything: TRANSFER_INCOMPLETE; what it did send stays out of sight', async () => {
    const { receiver, hostile, study } = await setup(path)
    const manifest = withNewTransfer(study.manifest)
    const s = await acceptedOffer(hostile, receiver, manifest, path)
    const first = manifest.instances[0]!
    s.instance(first.sha256, study.bytes.get(first.sha256)!)
    // the same instance again, now that it is verified
    s.instance(first.sha256, study.bytes.get(first.sha256)!)
    expect(await s.refusal()).toEqual(remoteAbort('BEELDNET_ERR_INSTANCE_NOT_REQUESTED'))

    const again = await HostileStream.open(hostile, receiver.node)
    again.offer(await signManifest(manifest, hostile.identity.privateKey))
    // the resumed session knows the verified one, and takes no commit without the rest
    expect(await again.answer()).toMatchObject({ decision: 'accept', have: [first.sha256] })
    again.send(encodeControl({ type: 'beeldnet/push-done' }))
    expect(await again.refusal()).toEqual(remoteAbort('BEELDNET_ERR_TRANSFER_INCOMPLETE'))
    // Verified, kept for a resume in the incoming area, but never in the store.
    await expectNothingVisible(receiver, study, [first.sha256])
  })

  it('manifests it cannot stand behind: signed by another key, naming another node or institution as sender, for another institution', async () => {
    const { receiver, honest, hostile, study } = await setup(path)
    const refused = async (signed: SignedManifest): Promise<unknown> => {
      const s = await HostileStream.open(hostile, receiver.node)
      s.offer(signed)
      return s.refusal()
    }
    // its own peer id as sender, but signed by a key that is not its own
    const otherKey = await generateKeyPair('Ed25519')
    expect(await refused(await signManifest(withNewTransfer(study.manifest), otherKey))).toEqual(remoteAbort('BEELDNET_ERR_MANIFEST_FORGED'))
    // a manifest signed by the honest node, replayed, or altered after the honest node signed it
    const genuine = await signManifest(withNewTransfer(study.manifest, { sender: { ura: HONEST_URA, peerId: honest.node.peerId } }), honest.node.identity.privateKey)
    expect(await refused(genuine)).toEqual(remoteAbort('BEELDNET_ERR_SIGNER_MISMATCH'))
    const altered = { ...genuine, signed: { ...genuine.signed, sender: { ura: HONEST_URA, peerId: hostile.peerId } } }
    expect(await refused(altered)).toEqual(remoteAbort('BEELDNET_ERR_MANIFEST_FORGED'))
    // signed with its own key, naming the honest node as sender
    const named = await signManifest(withNewTransfer(study.manifest, { sender: { ura: HONEST_URA, peerId: honest.node.peerId } }), hostile.identity.privateKey)
    expect(await refused(named)).toEqual(remoteAbort('BEELDNET_ERR_SIGNER_MISMATCH'))
    // signed with its own key and peer id, but claiming to send for another institution
    const spoofed = await signManifest(withNewTransfer(study.manifest, { sender: { ura: HONEST_URA, peerId: hostile.peerId } }), hostile.identity.privateKey)
    expect(await refused(spoofed)).toEqual(remoteAbort('BEELDNET_ERR_SIGNER_MISMATCH'))
    // for another institution than the receiver's
    const elsewhere = await signManifest(withNewTransfer(study.manifest, { destination: { ura: HONEST_URA, department: 'RAD' } }), hostile.identity.privateKey)
    expect(await refused(elsewhere)).toEqual(remoteAbort('BEELDNET_ERR_WRONG_DESTINATION'))

    // None of these opened a transfer at the receiver.
    expect(await receiver.exchange.incoming.list()).toEqual([])
    await expectNothingVisible(receiver, study)
  })

  it('while it misbehaves on several streams at once (stalling, wrong hash, garbage, overrun), an honest node\'s push completes', async () => {
    const { receiver, honest, hostile, study } = await setup(path)
    const dir = await tempDir('honest-study')
    const honestStudy = await storeWithStudy(honest.store, dir, smallStudy(777, { series: [{ modality: 'CT', instances: 12, rows: 64, columns: 64 }] }))

    // The hostile streams are all open and mid-instance before the honest push starts.
    const stalled = await acceptedOffer(hostile, receiver, withNewTransfer(study.manifest), path)
    const wrongHash = await acceptedOffer(hostile, receiver, withNewTransfer(study.manifest), path)
    const garbage = await acceptedOffer(hostile, receiver, withNewTransfer(study.manifest), path)
    const overrun = await acceptedOffer(hostile, receiver, withNewTransfer(study.manifest), path)
    const first = study.manifest.instances[0]!
    const half = study.bytes.get(first.sha256)!.subarray(0, Math.floor(first.size / 2))
    for (const s of [stalled, wrongHash, garbage, overrun]) s.instance(first.sha256, half, false)
    const refusals = Promise.all([stalled, wrongHash, garbage, overrun].map(async (s) => s.refusal()))

    const sent = await honest.exchange.send({ studyInstanceUID: honestStudy.studyInstanceUID, to: { ura: RECEIVER_URA, department: 'RAD' }, reason: 'verwijzing' })
    const complete = nextEvent(honest.exchange, 'study-complete', (e) => e.transferId === sent.transferId)
    const failed = nextEvent(honest.exchange, 'transfer-failed', (e) => e.transferId === sent.transferId).then((e) => { throw new Error(`the honest push failed: ${e.error.code}`) })

    // The hostile streams go on misbehaving while it runs.
    wrongHash.send(encodeData(randomBytes(first.size - half.byteLength)), encodeEnd())
    garbage.send(new Uint8Array([0, 0, 0, 8, 0x42]), randomBytes(8))
    overrun.send(encodeData(randomBytes(first.size)), encodeEnd())
    await Promise.race([complete, failed])

    // The honest study is there, whole and byte for byte; its receipt came back.
    expect(await instanceHashes(receiver.store, honestStudy.studyInstanceUID)).toEqual(await instanceHashes(honest.store, honestStudy.studyInstanceUID))
    expect(await honest.exchange.queue.get(sent.transferId)).toMatchObject({ state: 'complete', attempts: 1 })

    expect(await refusals).toEqual([
      remoteAbort('BEELDNET_ERR_STREAM_STALLED'),
      remoteAbort('BEELDNET_ERR_INSTANCE_HASH'),
      remoteAbort('BEELDNET_ERR_FRAME_MALFORMED'),
      remoteAbort('BEELDNET_ERR_INSTANCE_OVERRUN')
    ])
    await expectNothingVisible(receiver, study)
    expect((await receiver.store.findStudies()).map((s) => s.studyInstanceUID)).toEqual([honestStudy.studyInstanceUID])
  })

  it('an honest instance that takes longer than the stall timeout, arriving steadily, is not cut off', async () => {
    // Both ends with a short stall timeout; the sender's file yields a chunk every STALL_MS / 4.
    const { receiver, honest } = await setup(path, { honestStallMs: STALL_MS })
    const dir = await tempDir('slow-study')
    const slowStudy = await storeWithStudy(honest.store, dir, smallStudy(991, { series: [{ modality: 'CT', instances: 1, rows: 128, columns: 128 }] }))
    const open = honest.store.openInstance.bind(honest.store)
    honest.store.openInstance = (record) => Readable.from((async function * () {
      for await (const chunk of open(record)) {
        for (let i = 0; i < (chunk as Buffer).byteLength; i += 4096) {
          await delay(STALL_MS / 4)
          yield (chunk as Buffer).subarray(i, i + 4096)
        }
      }
    })())
    const sent = await honest.exchange.send({ studyInstanceUID: slowStudy.studyInstanceUID, to: { ura: RECEIVER_URA, department: 'RAD' }, reason: 'verwijzing' })
    const complete = nextEvent(honest.exchange, 'study-complete', (e) => e.transferId === sent.transferId)
    const failed = nextEvent(honest.exchange, 'state', (r) => r.transferId === sent.transferId && r.lastError !== undefined)
      .then((r) => { throw new Error(`the slow push was cut off: ${r.lastError!.code}`) })
    await Promise.race([complete, failed])
    expect(await honest.exchange.queue.get(sent.transferId)).toMatchObject({ state: 'complete', attempts: 1 })
    expect(await instanceHashes(receiver.store, slowStudy.studyInstanceUID)).toEqual(await instanceHashes(honest.store, slowStudy.studyInstanceUID))
  })
})
