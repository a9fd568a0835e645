import { describe, expect, it } from 'vitest'
import { useRegistries } from './helpers.ts'

const startRegistry = useRegistries()

/** The value of one sample line of the Prometheus text, or undefined. */
function sample (text: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`beeldnet_registry_http_requests_total{${labels}}`))
  return line === undefined ? undefined : Number(line.split(' ').at(-1))
}

describe('registry metrics', () => {
  it('counts the requests it answers by method, route pattern and status', async () => {
    const t = await startRegistry()
    for (let i = 0; i < 3; i++) expect((await t.http.get('/health')).status).toBe(200)
    expect((await t.http.get('/v1/roots/x')).status).toBe(400)
    expect((await t.http.get('/no/such/route')).status).toBe(404)

    const response = await fetch(`${t.registry.url}/metrics`)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toContain('text/plain')
    const text = await response.text()
    expect(sample(text, 'method="GET",route="/health",status="200"')).toBe(3)
    expect(sample(text, 'method="GET",route="/v1/roots/:version",status="400"')).toBe(1)
    expect(sample(text, 'method="GET",route="unmatched",status="404"')).toBe(1)
  })
})
