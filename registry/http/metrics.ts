import type { FastifyInstance } from 'fastify'
import { Counter, Registry } from 'prom-client'

/*
 * The registry's request counts for Prometheus (GET /metrics): how hard a network's nodes lean on
 * it (directory polls, timestamps) is what sizes the registry and its mirrors. Counted by route
 * pattern, not URL, so the label set stays small. Public like every other read: counts say nothing
 * about anyone.
 */

export function registerRegistryMetrics (app: FastifyInstance): void {
  const registry = new Registry()
  const requests = new Counter({
    name: 'beeldnet_registry_http_requests_total',
    help: 'HTTP requests answered, by method, route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry]
  })
  app.addHook('onResponse', async (req, reply) => {
    requests.inc({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) })
  })
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()))
}
