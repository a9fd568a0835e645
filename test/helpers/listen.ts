import type { FastifyInstance } from 'fastify'

/** Starts an HTTP server on a free loopback port and gives its base URL. */
export async function listenOnLoopback (app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
}
