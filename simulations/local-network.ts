// `npm start`: a whole Beeldnet network on loopback (registry, governance, three hospital nodes with
// sample studies), its addresses and a few commands printed. The first run sets it up in ./data/local
// (BEELDNET_LOCAL_DIR overrides); later runs reuse it. Delete the directory to start afresh.
import { join, relative, resolve } from 'node:path'
import { pino } from 'pino'
import { reportError } from '../protocol/cli/output.ts'
import { DEMO_PASSWORD } from './scenarios/demo-accounts.ts'
import { startLocalNetwork, type LocalNetwork } from './scenarios/local-network.ts'

const dataDir = resolve(process.env.BEELDNET_LOCAL_DIR ?? join(import.meta.dirname, '..', 'data', 'local'))
/** Fixed ports, so the printed addresses stay the same from run to run. */
const port = (name: string, fallback: number): number => process.env[name] === undefined ? fallback : Number(process.env[name])

/** Paths under the working directory are shown relative to it: shorter commands to copy. */
const shown = (path: string): string => {
  const rel = relative(process.cwd(), path)
  return rel === '' || rel.startsWith('..') ? path : rel
}

function summary (net: LocalNetwork, patient: { bsn?: string, birthDate: string } | undefined): string {
  const registry = net.registry.url
  const keys = net.governance.members
  const first = net.nodes[0]!
  // Something for governance to do: suspend a hospital, or reinstate one suspended earlier.
  const suspended = net.nodes.find((n) => n.state === 'suspended')
  const target = suspended ?? net.nodes.slice(1).find((n) => n.state === 'active')
  const action = suspended === undefined ? 'suspend' : 'reinstate'
  const beeldnet = 'npm run beeldnet --'
  const lines = [
    '',
    `Beeldnet local network "${net.network}" is running (${net.created ? 'set up just now' : 'reused'}; data in ${shown(net.dataDir)}).`,
    '',
    `  registry   ${registry}   (governance view: ${registry}/)   root v1 ${net.registry.rootHash.slice(0, 16)}, ${net.governance.threshold} of ${keys.length} governance keys in ${shown(join(net.dataDir, 'governance'))}`,
    ''
  ]
  for (const n of net.nodes) {
    lines.push(
      `  ${n.name}  (URA ${n.ura}; ${n.departments.map((d) => `${d.code} ${d.name}`).join(', ')})${n.state === 'active' ? '' : `  ${n.state.toUpperCase()}`}`,
      `    web app  ${n.url}/`,
      ...(n.sampleStudies[0] === undefined ? [] : [`    viewer   ${n.url}/viewer/studies/${n.sampleStudies[0]}   (log in as arts)`]),
      `    health   ${n.url}/health`,
      `    accounts ${n.accounts.map((a) => `${a.username} (${a.role})`).join(', ')}; password ${DEMO_PASSWORD}`,
      `    studies  ${n.url}/api/studies   (${n.sampleStudies.length} sample studies)`,
      `    dicomweb ${n.url}/dicomweb   (QIDO-RS, WADO-RS, STOW-RS)`,
      ...(n.node.dimse === undefined ? [] : [`    dimse    AE BEELDNET at 127.0.0.1:${n.node.dimse.port} (calling AE PACS)`]),
      `    peer id  ${n.peerId}`,
      `    libp2p   ${n.addresses.join(' ')}`,
      `    data     ${shown(n.dataDir)}`,
      ''
    )
  }
  const second = net.nodes[1]
  const exchange = second === undefined || first.sampleStudies.length === 0 || patient?.bsn === undefined
    ? []
    : [
        `  # send a study from ${first.name} to ${second.name}, and follow it to the signed receipt`,
        `  ${beeldnet} node send ${first.sampleStudies[0]!} --to ${second.ura}/RAD --reason verwijzing --note "graag beoordelen" --data-dir ${shown(first.dataDir)} --node ${first.url}`,
        `  # from ${second.name}: find ${first.name}'s studies of a patient, and pull one (its policy allows care)`,
        `  ${beeldnet} node query --at ${first.ura} --bsn ${patient.bsn} --birth-date ${patient.birthDate} --clinician "dr. B. de Boer" --uzi 987654321 --data-dir ${shown(second.dataDir)} --node ${second.url}`,
        `  ${beeldnet} node pull ${first.sampleStudies.at(-1)!} --at ${first.ura} --clinician "dr. B. de Boer" --uzi 987654321 --data-dir ${shown(second.dataDir)} --node ${second.url}`,
        `  ${beeldnet} node transfers --watch --data-dir ${shown(second.dataDir)} --node ${second.url}`,
        `  curl -s -H "Authorization: Bearer $(cat ${shown(first.dataDir)}/cli-token)" ${first.url}/api/transfers`
      ]
  lines.push(
    'Try:',
    `  # every route but /health needs a login or a token; the CLI's token is in each node's data directory`,
    `  curl -s -H "Authorization: Bearer $(cat ${shown(first.dataDir)}/cli-token)" ${first.url}/api/studies`,
    `  curl -s -H "Authorization: Bearer $(cat ${shown(first.dataDir)}/cli-token)" '${first.url}/dicomweb/studies?PatientName=*'`,
    ...(first.node.dimse === undefined ? [] : [`  echoscu -aet PACS -aec BEELDNET 127.0.0.1 ${first.node.dimse.port}   # dcmtk: findscu, storescu, movescu and getscu work too`]),
    ...exchange,
    `  ${beeldnet} node --data-dir ${shown(first.dataDir)} directory`,
    `  ${beeldnet} governance --registry ${registry} status`,
    ...(target === undefined
      ? []
      : [
          `  # ${action} ${target.name}: one member proposes, ${net.governance.threshold} sign; every node follows within seconds`,
          `  ${beeldnet} governance --registry ${registry} propose --key ${shown(keys[0]!.file)} ${action} --ura ${target.ura} --reason "trying it out"`,
          ...keys.slice(0, net.governance.threshold).map((k) => `  ${beeldnet} governance --registry ${registry} sign --key ${shown(k.file)} --yes`)
        ]),
    `  # the store's verbs go through the running node (import a DVD folder, list, show, export): ${beeldnet} node --data-dir ${shown(first.dataDir)} studies`,
    '',
    'Press Ctrl-C to stop.'
  )
  return lines.join('\n')
}

let network: LocalNetwork
try {
  network = await startLocalNetwork({
    dataDir,
    registryPort: port('BEELDNET_REGISTRY_PORT', 8480),
    httpBasePort: port('BEELDNET_HTTP_PORT', 8470),
    p2pBasePort: 8490,
    dimseBasePort: port('BEELDNET_DIMSE_PORT', 11112),
    pollIntervalSeconds: 5,
    demoAccounts: true,
    logger: pino({ level: process.env.BEELDNET_LOG_LEVEL ?? 'warn' }),
    onProgress: (line) => { console.log(line) }
  })
} catch (err) {
  process.exit(reportError(err, false))
}
const example = network.nodes[0]?.sampleStudies.at(-1)
const patient = example === undefined ? undefined : (await network.nodes[0]!.node.store.getStudy(example)).study.patient
console.log(summary(network, patient))

let stopping = false
const stop = (signal: string): void => {
  if (stopping) {
    console.log(`${signal} again: exiting without waiting`)
    process.exit(1)
  }
  stopping = true
  console.log('stopping ...')
  network.stop().then(() => { process.exit(0) }, (err: unknown) => { process.exit(reportError(err, false)) })
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
