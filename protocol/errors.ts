/**
 * Every refusal in Beeldnet carries a stable code (`BEELDNET_ERR_...`). The code crosses the wire,
 * lands in audit logs and is what scripts match on; the message is for people and may change.
 */
export class BeeldnetError extends Error {
  readonly code: string

  constructor (code: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

export function isBeeldnetError (err: unknown): err is BeeldnetError {
  return err instanceof BeeldnetError
}
