import { generateKeyPair, peerIdOfPublicKey } from '../../protocol/keys.ts'
import type { Directory, Institution } from '../../protocol/registry/documents.ts'
import { entriesOf } from '../../protocol/registry/entries-tree.ts'

/** A directory the size of a national network and then some: `count` institutions, `nodesEach` keys each. */
export function largeDirectory (network: string, count: number, nodesEach: number, issued = new Date()): Directory {
  const since = issued.toISOString()
  const institutions: Institution[] = []
  for (let i = 0; i < count; i++) {
    const ura = String(10_000_000 + i)
    institutions.push({
      ura,
      name: `Zorginstelling ${ura}`,
      kind: i % 10 === 0 ? 'hospital' : 'diagnostic-centre',
      departments: [{ code: 'RAD', name: 'Radiologie' }, { code: 'CAR', name: 'Cardiologie' }],
      status: { state: 'active', since },
      nodes: Array.from({ length: nodesEach }, (_, n) => {
        const key = generateKeyPair()
        return {
          peerId: peerIdOfPublicKey(key.publicKey),
          publicKey: key.publicKey,
          addresses: [`/dns4/beeldnet${n}.z${ura}.example.nl/tcp/4001`],
          notBefore: since,
          status: 'active' as const
        }
      })
    })
  }
  return {
    type: 'beeldnet/directory',
    network,
    version: 1,
    rootVersion: 1,
    prev: null,
    issued: since,
    expires: new Date(issued.getTime() + 30 * 86_400_000).toISOString(),
    entries: entriesOf(institutions).entries,
    institutions
  }
}
