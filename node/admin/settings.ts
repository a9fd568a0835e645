import type { NodeConfig } from '../config/config.ts'

/*
 * The settings IT's pages show: read-only, the config file is the source. Each section is picked
 * field by field rather than spread, so a secret added to the config later (a registry credential,
 * a syslog password) does not appear here unasked.
 */

export interface SettingsInForce {
  routing: { rules: NodeConfig['routing']['rules'] }
  policy: { pull: NodeConfig['policy']['pull'] }
  transfers: { bulkPatientLimit: number }
  dimse: {
    enabled: boolean
    host: string
    port: number
    aeTitle: string
    acceptCalling: string[]
    destinations: Array<{ aeTitle: string, host: string, port: number }>
  }
  pacs: { destination: string, forward: NodeConfig['pacs']['forward'] }
}

export function settingsInForce (config: NodeConfig): SettingsInForce {
  const { dimse } = config
  return {
    routing: { rules: config.routing.rules },
    policy: { pull: config.policy.pull },
    transfers: { bulkPatientLimit: config.transfers.bulkPatientLimit },
    dimse: {
      enabled: dimse.enabled,
      host: dimse.host,
      port: dimse.port,
      aeTitle: dimse.aeTitle,
      acceptCalling: dimse.acceptCalling,
      destinations: dimse.destinations.map((d) => ({ aeTitle: d.aeTitle, host: d.host, port: d.port }))
    },
    pacs: { destination: config.pacs.destination, forward: config.pacs.forward }
  }
}
