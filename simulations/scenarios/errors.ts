import { BeeldnetError } from '../../protocol/errors.ts'

/* Why a scenario could not set up or start its network; one class per condition, each with a stable code. */

/** The data directory holds something, but not a network this scenario made (no network.json). */
export class NotALocalNetworkError extends BeeldnetError {
  constructor (dir: string, why: string) {
    super('BEELDNET_ERR_NOT_A_LOCAL_NETWORK', `${dir} ${why}; delete it (or pick another directory) to set up a new local network`)
  }
}

/** Something asked of the scenario that it cannot give (too many nodes, a port range past 65535, ...). */
export class ScenarioOptionError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_SCENARIO_OPTION', message) }
}

/** Governance could not get a change published (a candidate already open, too few signatures). */
export class GovernanceStepError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_GOVERNANCE_STEP', message) }
}

/** The nodes did not all come to hold the expected directory in time. */
export class NetworkNotReadyError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_NETWORK_NOT_READY', message) }
}

/** A generated sample was refused by the node's import: the generator and the importer disagree. */
export class SampleImportError extends BeeldnetError {
  constructor (message: string) { super('BEELDNET_ERR_SAMPLE_IMPORT', message) }
}
