import type { DirectoryStatus } from '../directory/directory-service.ts'
import type { P2PStatus } from '../p2p/host.ts'
import type { DiskRefusal } from '../store/disk-space.ts'
import type { DiskUsage } from '../store/study-store.ts'

/*
 * What /health reports as wrong, each as a sentence IT can act on. An empty list is healthy.
 * The node keeps working through most of these (an unreachable registry, say); health says so.
 */

/** Below this much free disk a study may no longer fit. */
const LOW_DISK_BYTES = 1024 ** 3

export interface HealthInputs {
  directory: DirectoryStatus | null
  p2p: P2PStatus | null
  store: DiskUsage
  /** the store's refusal for want of space still in force (DiskSpace.problem()), if any */
  diskFull?: DiskRefusal
  /** the reserve the store keeps free (store.minFreeBytes): low disk is said above it */
  minFreeBytes?: number
}

export interface HealthProblem {
  code: string
  message: string
}

export function healthProblems (inputs: HealthInputs): HealthProblem[] {
  const problems: HealthProblem[] = []
  const { directory, p2p, store } = inputs
  if (directory !== null) {
    if (directory.rootVersion === null) problems.push({ code: 'BEELDNET_ERR_ROOT_NOT_PINNED', message: 'no root pinned: enrol the node (beeldnet node enrol)' })
    else if (directory.directoryVersion === null) problems.push({ code: 'BEELDNET_ERR_NOT_PUBLISHED', message: 'no directory yet: peers cannot connect until governance admits this node' })
    if (directory.expired) problems.push({ code: 'BEELDNET_ERR_EXPIRED', message: `the directory expired at ${directory.expires ?? '?'}: governance must renew it` })
    if (directory.lastError !== null) problems.push({ code: directory.lastError.code, message: `last directory refresh failed: ${directory.lastError.message}` })
  }
  if (p2p !== null && !p2p.running) problems.push({ code: 'BEELDNET_ERR_P2P_NOT_STARTED', message: 'the peer-to-peer host is not running' })
  if (inputs.diskFull !== undefined) {
    problems.push({ code: 'BEELDNET_ERR_DISK_FULL', message: `the node refuses new studies (offers, STOW-RS, C-STORE) until space is freed; it still serves what it holds. ${inputs.diskFull.message}` })
  } else if (store.freeBytes < LOW_DISK_BYTES + (inputs.minFreeBytes ?? 0)) {
    problems.push({ code: 'BEELDNET_ERR_DISK_LOW', message: `only ${Math.round(store.freeBytes / 1024 ** 2)} MB free on the store's disk${inputs.minFreeBytes === undefined ? '' : `, of which ${Math.round(inputs.minFreeBytes / 1024 ** 2)} MB are kept free (store.minFreeBytes)`}` })
  }
  return problems
}
