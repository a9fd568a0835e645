import type { BeeldnetError } from '../../protocol/errors.ts'
import { isBeeldnetError } from '../../protocol/errors.ts'
import { BadRequestError, BodyTooLargeError, MalformedBodyError, MediaTypeError, RateLimitedError } from '../errors.ts'

/*
 * Every refusal leaves the registry as {code, message}. Fastify's own errors (body too large,
 * broken JSON, wrong content type) are translated to our codes here, in one place.
 */

interface FastifyishError { code?: string, statusCode?: number, message?: string }

export function toRefusal (err: unknown, bodyLimit: number): BeeldnetError | undefined {
  if (isBeeldnetError(err)) return err
  const e = (typeof err === 'object' && err !== null ? err : {}) as FastifyishError
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return new BodyTooLargeError(bodyLimit)
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY': return new MalformedBodyError(e.message ?? 'invalid JSON')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return new MediaTypeError(`content type ${JSON.stringify(e.message?.match(/'([^']*)'/)?.[1] ?? 'unknown')} is not accepted; send application/json`)
  }
  // JSON.parse's SyntaxError (and prototype poisoning) reaches us as a 400 without a code.
  if (err instanceof SyntaxError && e.statusCode === 400) return new MalformedBodyError(err.message)
  if (e.statusCode === 429) return new RateLimitedError('too many requests from this address; retry in a minute')
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) return new BadRequestError(e.message ?? 'bad request')
  return undefined
}
