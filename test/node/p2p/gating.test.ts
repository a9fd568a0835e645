import { peerIdFromString } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import type { Directory } from '../../../protocol/registry/documents.ts'
import { isActiveNode } from '../../../protocol/registry/verify.ts'
import { createPeerGating } from '../../../node/p2p/gating.ts'
import { makeEnrolment, makeGovernance, makeNodeKey, nextDirectory, type TestNodeKey } from '../../helpers/registry-fixtures.ts'

const DAY = 86_400_000

/** Five institutions covering every standing, built through the same changes governance makes. */
function network () {
  const gov = makeGovernance()
  const net = gov.root.network
  const keys = { active: makeNodeKey(), suspended: makeNodeKey(), revoked: makeNodeKey(), revokedKey: makeNodeKey(), rotatedOld: makeNodeKey(), rotatedNew: makeNodeKey() }
  const admit = (ura: string, key: TestNodeKey) => ({ action: 'admit' as const, enrolment: makeEnrolment(net, ura, key) })
  const v1 = nextDirectory(gov, undefined, [
    admit('10000001', keys.active), admit('10000002', keys.suspended), admit('10000003', keys.revoked),
    admit('10000004', keys.revokedKey), admit('10000005', keys.rotatedOld)
  ])
  const v2 = nextDirectory(gov, v1.signed, [
    { action: 'suspend', ura: '10000002', reason: 'audit' },
    { action: 'revoke', ura: '10000003', reason: 'left' },
    { action: 'revoke-node-key', ura: '10000004', peerId: keys.revokedKey.peerId, reason: 'leaked' },
    { action: 'rotate-node-key', ura: '10000005', oldPeerId: keys.rotatedOld.peerId, enrolment: makeEnrolment(net, '10000005', keys.rotatedNew), overlapDays: 2 }
  ])
  return { gov, keys, v1, v2 }
}

describe('connection gating', () => {
  it('admits active keys of active institutions only, and says why it refuses', () => {
    const { keys, v2 } = network()
    let now = Date.now()
    const gating = createPeerGating({ directory: { directory: v2.signed } }, { now: () => new Date(now) })
    const reasons = (): Record<string, string> => Object.fromEntries(Object.entries(keys).map(([name, key]) => {
      const d = gating.check(key.peerId)
      return [name, d.allowed ? 'allowed' : d.reason]
    }))
    expect(reasons()).toEqual({
      active: 'allowed',
      suspended: 'institution-suspended',
      revoked: 'institution-revoked',
      revokedKey: 'key-revoked',
      rotatedOld: 'allowed',
      rotatedNew: 'allowed'
    })
    expect(gating.check(makeNodeKey().peerId)).toEqual({ allowed: false, reason: 'unknown-peer' })
    expect(gating.allowedPeers().map((e) => e.ura).sort()).toEqual(['10000001', '10000005', '10000005'])

    // the rotated-out key works until its notAfter, then no more
    now += 3 * DAY
    expect(reasons()).toMatchObject({ rotatedOld: 'key-expired', rotatedNew: 'allowed', active: 'allowed' })
    // a key listed from tomorrow on is not admitted today (beyond the clock-skew allowance)
    now = Date.now() - DAY
    expect(reasons()).toMatchObject({ active: 'key-not-yet-valid' })
  })

  it('agrees with protocol isActiveNode on every entry', () => {
    const { v2 } = network()
    const now = new Date()
    const gating = createPeerGating({ directory: { directory: v2.signed } }, { now: () => now, clockSkewMs: 0 })
    for (const inst of v2.signed.institutions) {
      for (const node of inst.nodes) expect(gating.check(node.peerId).allowed).toBe(isActiveNode(v2.signed, node.peerId, now))
    }
  })

  it('refuses everyone without a directory, and follows the directory held now', () => {
    const { keys, v1, v2 } = network()
    const source: { directory: Directory | undefined } = { directory: undefined }
    const gating = createPeerGating({ directory: source })
    expect(gating.check(keys.active.peerId)).toEqual({ allowed: false, reason: 'no-directory' })
    expect(gating.institutionOf(keys.active.peerId)).toBeUndefined()
    source.directory = v1.signed
    expect(gating.check(keys.suspended.peerId).allowed).toBe(true)
    source.directory = v2.signed
    expect(gating.check(keys.suspended.peerId)).toMatchObject({ allowed: false, reason: 'institution-suspended', entry: { ura: '10000002' } })
    expect(gating.institutionOf(keys.suspended.peerId)).toMatchObject({ ura: '10000002', institution: { name: 'Ziekenhuis 10000002', status: { state: 'suspended' } }, node: { peerId: keys.suspended.peerId } })
  })

  it('the libp2p gater refuses at dial and after the handshake, and counts by direction and reason', async () => {
    const { keys, v2 } = network()
    const gating = createPeerGating({ directory: { directory: v2.signed } })
    const gater = gating.connectionGater
    const id = (key: TestNodeKey) => peerIdFromString(key.peerId)
    const conn = {} as Parameters<NonNullable<typeof gater.denyInboundEncryptedConnection>>[1]
    expect(await gater.denyDialPeer!(id(keys.active))).toBe(false)
    expect(await gater.denyInboundEncryptedConnection!(id(keys.active), conn)).toBe(false)
    expect(await gater.denyDialPeer!(id(keys.suspended))).toBe(true)
    expect(await gater.denyOutboundEncryptedConnection!(id(keys.revokedKey), conn)).toBe(true)
    expect(await gater.denyInboundEncryptedConnection!(id(keys.revoked), conn)).toBe(true)
    expect(await gater.denyInboundUpgradedConnection!(id(makeNodeKey()), conn)).toBe(true)
    expect(await gater.denyInboundRelayReservation!(id(keys.active))).toBe(true)
    expect(gating.refusals().sort((x, y) => `${x.direction}${x.reason}`.localeCompare(`${y.direction}${y.reason}`))).toEqual([
      { direction: 'inbound', reason: 'institution-revoked', count: 1 },
      { direction: 'inbound', reason: 'unknown-peer', count: 1 },
      { direction: 'outbound', reason: 'institution-suspended', count: 1 },
      { direction: 'outbound', reason: 'key-revoked', count: 1 }
    ])
  })
})
