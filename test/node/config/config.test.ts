import { describe, expect, it } from 'vitest'
import { defaultConfigText, parseConfig } from '../../../node/config/config.ts'

describe('node config', () => {
  it('the file init writes parses to the documented defaults', () => {
    expect(parseConfig(defaultConfigText('Noord'), {})).toEqual({
      node: { name: 'Noord' },
      http: { host: '127.0.0.1', port: 8470 },
      store: { retentionDays: 30, retentionIntervalMinutes: 60 },
      log: { level: 'info' }
    })
  })

  it('environment variables override the file, per key', () => {
    const config = parseConfig(defaultConfigText('Noord'), { BEELDNET_HTTP_PORT: '9000', BEELDNET_STORE_RETENTION_DAYS: '7', BEELDNET_LOG_LEVEL: 'debug' })
    expect(config.http).toEqual({ host: '127.0.0.1', port: 9000 })
    expect(config.store.retentionDays).toBe(7)
    expect(config.log.level).toBe('debug')
  })

  it('an empty file gives every default', () => {
    expect(parseConfig('', {}).http.port).toBe(8470)
  })

  it.each([
    ['a misspelt key', 'http:\n  prot: 80\n', 'http: Unrecognized key'],
    ['an unknown section', 'peers:\n  max: 3\n', 'Unrecognized key'],
    ['a port out of range', 'http:\n  port: 70000\n', 'http.port'],
    ['a bad log level', 'log:\n  level: loud\n', 'log.level'],
    ['broken YAML', 'http: [\n', 'not valid YAML']
  ])('refuses %s with BEELDNET_ERR_CONFIG naming the setting', (_label, text, fragment) => {
    expect(() => parseConfig(text, {})).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_CONFIG', message: expect.stringContaining(fragment) }))
  })

  it('refuses a bad environment override too', () => {
    expect(() => parseConfig('', { BEELDNET_HTTP_PORT: 'eighty' })).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_CONFIG', message: expect.stringContaining('http.port') }))
  })
})
