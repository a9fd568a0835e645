import { BeeldnetError, PassedOnError } from '../../protocol/errors.ts'

/* Refusals the CLI meets when it talks to a running node over its HTTP API. */

export class NodeUnreachableError extends BeeldnetError {
  constructor (message: string, cause: unknown) { super('BEELDNET_ERR_NODE_UNREACHABLE', message, { cause }) }
}

/** The node refused (or passed on a peer's refusal); the code is kept, so scripts see what the API gives. */
export class NodeRefusedError extends PassedOnError {
  constructor (remoteCode: unknown, message: string) { super(remoteCode, 'BEELDNET_ERR_INTERNAL', message) }
}
