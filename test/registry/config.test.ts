import { describe, expect, it } from 'vitest'
import { envName, parseConfig } from '../../registry/config.ts'

describe('registry config', () => {
  it('fills defaults, takes BEELDNET_REGISTRY_* overrides, then explicit ones', () => {
    const config = parseConfig('network: beeldnet-nl\n', { env: { BEELDNET_REGISTRY_PORT: '9000', BEELDNET_REGISTRY_RATE_LIMIT_PER_MINUTE: '600' } })
    expect(config).toEqual({
      network: 'beeldnet-nl',
      host: '127.0.0.1',
      port: 9000,
      directoryValidityDays: 30,
      rootValidityDays: 365,
      timestampValidityMinutes: 60,
      rateLimitPerMinute: 600,
      bodyLimitBytes: 65536,
      logLevel: 'info'
    })
    expect(parseConfig('network: beeldnet-nl\nport: 1\n', { env: { BEELDNET_REGISTRY_PORT: '2' }, overrides: { port: 3 } }).port).toBe(3)
    expect(envName('timestampValidityMinutes')).toBe('BEELDNET_REGISTRY_TIMESTAMP_VALIDITY_MINUTES')
  })

  it('refuses unknown keys and bad values with BEELDNET_ERR_CONFIG naming the setting', () => {
    expect(() => parseConfig('network: beeldnet-nl\nprot: 80\n', { env: {} })).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_CONFIG', message: expect.stringContaining('prot') }))
    expect(() => parseConfig('network: beeldnet-nl\n', { env: { BEELDNET_REGISTRY_PORT: 'eighty' } })).toThrow(expect.objectContaining({ message: expect.stringContaining('BEELDNET_REGISTRY_PORT') }))
    expect(() => parseConfig('port: 80\n', { env: {} })).toThrow(expect.objectContaining({ message: expect.stringContaining('network') }))
    expect(() => parseConfig('[1, 2]', { env: {} })).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_CONFIG' }))
  })
})
