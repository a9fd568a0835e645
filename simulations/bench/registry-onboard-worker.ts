// Onboards `count` institutions in one governance round on a registry holding `base` of them, in
// its own process: `count` admit proposals submitted one by one (each checked against the pending
// ones), the candidate frozen, three signatures, published. Real level store. One JSON line.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { generateKeyPair, peerIdOfPublicKey, signDocument } from '../../protocol/keys.ts'
import { envelopeOf, headerOf, type SignedEnrolment, type SignedProposal } from '../../protocol/registry/documents.ts'
import { directoryHash } from '../../protocol/registry/verify.ts'
import { RegistryService } from '../../registry/service.ts'
import { RegistryStore } from '../../registry/store/registry-store.ts'
import { largeDirectory } from './large-directory.ts'

const base = Number(process.argv[2] ?? 1000)
const count = Number(process.argv[3] ?? 1000)
const network = 'beeldnet-bench'
const work = await mkdtemp(join(tmpdir(), 'beeldnet-bench-onboard-'))
try {
  const governance = Array.from({ length: 5 }, () => generateKeyPair())
  const timestampKey = generateKeyPair()
  const now = new Date().toISOString()
  const root = {
    type: 'beeldnet/root' as const, network, version: 1, issued: now, expires: new Date(Date.now() + 365 * 86_400_000).toISOString(), threshold: 3,
    governanceKeys: governance.map((k) => ({ keyid: k.keyid, publicKey: k.publicKey })), timestampKey: { keyid: timestampKey.keyid, publicKey: timestampKey.publicKey }
  }
  const directory = largeDirectory(network, base, 2)
  const store = new RegistryStore({ location: join(work, 'db') })
  await store.start()
  await store.publish({
    root: { signed: root, signatures: governance.map((k) => signDocument(root, k)) },
    directory: { envelope: envelopeOf(directory, governance.map((k) => signDocument(headerOf(directory), k))), index: { version: 1, hash: directoryHash(directory), issued: directory.issued, expires: directory.expires, signers: [] } },
    proposals: [],
    enrolments: []
  })
  const service = new RegistryService({ store, logger: pino({ level: 'silent' }), timestampKey }, { network })
  await service.start()
  // Enrolments and proposals are made before the clock starts: governance members sign them elsewhere.
  const proposals: SignedProposal[] = []
  for (let i = 0; i < count; i++) {
    const key = generateKeyPair()
    const ura = String(50_000_000 + i)
    const e = { type: 'beeldnet/enrolment' as const, network, ura, name: `Nieuwe instelling ${ura}`, kind: 'hospital' as const, departments: [{ code: 'RAD', name: 'Radiologie' }], publicKey: key.publicKey, peerId: peerIdOfPublicKey(key.publicKey), addresses: ['/dns4/beeldnet.example.nl/tcp/4001'], requested: now }
    const enrolment: SignedEnrolment = { signed: e, signatures: [signDocument(e, key)] }
    const signed = { type: 'beeldnet/proposal' as const, network, proposed: now, change: { action: 'admit' as const, enrolment } }
    proposals.push({ signed, signatures: [signDocument(signed, governance[i % 5]!)] })
  }
  const started = process.hrtime.bigint()
  for (const p of proposals) await service.submitProposal(p)
  const submitted = process.hrtime.bigint()
  const candidate = await service.candidate()
  let published = false
  for (const key of governance.slice(0, 3)) published = (await service.addSignature({ hash: candidate.hash, signature: signDocument(candidate.signed, key) })).published
  const done = process.hrtime.bigint()
  if (!published) throw new Error('the onboarding candidate was not published')
  const institutions = (await service.status()).directory
  await service.stop()
  await store.stop()
  process.stdout.write(JSON.stringify({
    base, count, seconds: Number(done - started) / 1e9, submitSeconds: Number(submitted - started) / 1e9, version: institutions?.version, peakRssMb: process.resourceUsage().maxRSS / 1024
  }) + '\n')
} finally {
  await rm(work, { recursive: true, force: true })
}
