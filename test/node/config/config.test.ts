import { describe, expect, it } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { defaultConfigText, parseConfig, updateConfigFile } from '../../../node/config/config.ts'
import { useTempDirs } from '../../helpers/temp-dir.ts'

const tempDir = useTempDirs()

describe('node config', () => {
  it('the file init writes parses to the documented defaults', () => {
    expect(parseConfig(defaultConfigText('Noord'), {})).toEqual({
      node: { name: 'Noord' },
      http: { host: '127.0.0.1', port: 8470, trustProxy: '' },
      store: { retentionDays: 30, retentionIntervalMinutes: 60, duplicates: 'keep', minFreeBytes: 1024 ** 3 },
      log: { level: 'info' },
      registry: { url: '', pollIntervalSeconds: 300, mirrors: [] },
      p2p: { listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], streamWindowBytes: 1024 * 1024, dataChannel: 'tls', dataPort: 0, inboundConnectionsPerSecond: 5 },
      transfers: { concurrency: 4, perPeerConcurrency: 2, retryForHours: 24, stallTimeoutSeconds: 30, bulkPatientLimit: 3, compression: 'off', retryPauseMaxSeconds: 600 },
      dimse: { enabled: false, host: '127.0.0.1', port: 11112, aeTitle: 'BEELDNET', acceptCalling: [], destinations: [], idleSeconds: 60 },
      routing: { rules: [] },
      audit: { syslog: '' },
      pacs: { destination: '', forward: 'confirm', mappingFile: '', exportMaxAttempts: 100, exportBackoffSeconds: 30, exportBackoffMaxSeconds: 1800 },
      shares: { defaultDays: 14, maxDays: 90, defaultDownloads: 5, publicUrl: '' },
      policy: { pull: [] }
    })
  })

  it('share links: days within maxDays, at most 20 downloads, an https:// public address; from the environment too', () => {
    expect(parseConfig('', { BEELDNET_SHARES_PUBLIC_URL: 'https://beelden.example.nl', BEELDNET_SHARES_MAX_DAYS: '30' }).shares).toEqual({ defaultDays: 14, maxDays: 30, defaultDownloads: 5, publicUrl: 'https://beelden.example.nl' })
    expect(() => parseConfig('shares:\n  defaultDays: 100\n', {})).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_CONFIG', message: expect.stringContaining('shares.defaultDays') }))
    expect(() => parseConfig('shares:\n  defaultDownloads: 21\n', {})).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_CONFIG', message: expect.stringContaining('shares.defaultDownloads') }))
    expect(() => parseConfig('shares:\n  publicUrl: http://beelden.example.nl\n', {})).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_CONFIG', message: expect.stringContaining('shares.publicUrl') }))
  })

  it('DIMSE settings take AE titles of at most 16 characters without backslashes; calling AE titles also from the environment', () => {
    const file = 'dimse:\n  enabled: true\n  destinations:\n    - { aeTitle: PACS, host: 10.0.0.5, port: 104 }\n'
    const config = parseConfig(file, { BEELDNET_DIMSE_ACCEPT_CALLING: 'PACS, CT1' })
    expect(config.dimse).toMatchObject({ enabled: true, acceptCalling: ['PACS', 'CT1'], destinations: [{ aeTitle: 'PACS', host: '10.0.0.5', port: 104 }] })
    expect(parseConfig('', { BEELDNET_DIMSE_IDLE_SECONDS: '600' }).dimse.idleSeconds).toBe(600)
    expect(() => parseConfig('dimse:\n  idleSeconds: 0\n', {})).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_CONFIG' }))
    expect(() => parseConfig('dimse:\n  aeTitle: MUCH_TOO_LONG_AE_TITLE\n', {})).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_CONFIG', message: expect.stringContaining('dimse.aeTitle') }))
    expect(() => parseConfig('dimse:\n  acceptCalling: ["A\\\\B"]\n', {})).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_CONFIG' }))
    expect(() => parseConfig('pacs:\n  forward: sometimes\n', {})).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_CONFIG', message: expect.stringContaining('pacs.forward') }))
  })

  it('the store\'s free-space reserve and quota take bytes or a size with a unit, from the file or the environment', () => {
    expect(parseConfig('store:\n  minFreeBytes: 500MB\n  maxBytes: 2TiB\n', {}).store).toMatchObject({ minFreeBytes: 500e6, maxBytes: 2 * 1024 ** 4 })
    expect(parseConfig('store:\n  minFreeBytes: 1048576\n', {}).store.minFreeBytes).toBe(1024 ** 2)
    expect(parseConfig('', { BEELDNET_STORE_MIN_FREE_BYTES: '2 GiB', BEELDNET_STORE_MAX_BYTES: '1.5TB' }).store).toMatchObject({ minFreeBytes: 2 * 1024 ** 3, maxBytes: 1.5e12 })
    expect(parseConfig('', {}).store.maxBytes).toBeUndefined()
    expect(() => parseConfig('store:\n  minFreeBytes: lots\n', {})).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_CONFIG', message: expect.stringContaining('store.minFreeBytes') }))
    expect(() => parseConfig('store:\n  maxBytes: 5 parsecs\n', {})).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_CONFIG', message: expect.stringContaining('store.maxBytes') }))
  })

  it('pull rules need a URA, a decision and known purposes', () => {
    const file = "policy:\n  pull:\n    - { ura: '12345678', purposes: [treatment], decision: allow }\n    - { ura: '87654321', decision: queue }\n"
    expect(parseConfig(file, {}).policy.pull).toEqual([{ ura: '12345678', purposes: ['treatment'], decision: 'allow' }, { ura: '87654321', decision: 'queue' }])
    expect(() => parseConfig("policy:\n  pull:\n    - { ura: '1234', decision: allow }\n", {})).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_CONFIG', message: expect.stringContaining('policy.pull.0.ura') }))
    expect(() => parseConfig("policy:\n  pull:\n    - { ura: '12345678', purposes: [curiosity], decision: allow }\n", {})).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_CONFIG' }))
  })

  it('environment variables override the file, per key', () => {
    const config = parseConfig(defaultConfigText('Noord'), { BEELDNET_HTTP_PORT: '9000', BEELDNET_STORE_RETENTION_DAYS: '7', BEELDNET_LOG_LEVEL: 'debug' })
    expect(config.http).toEqual({ host: '127.0.0.1', port: 9000, trustProxy: '' })
    expect(config.store.retentionDays).toBe(7)
    expect(config.log.level).toBe('debug')
  })

  it('registry settings come from the file or the environment; mirrors comma-separated', () => {
    const file = 'registry:\n  url: https://registry.example.nl\n  mirrors: [https://mirror.example.nl/beeldnet]\n'
    expect(parseConfig(file, {}).registry).toEqual({ url: 'https://registry.example.nl', pollIntervalSeconds: 300, mirrors: ['https://mirror.example.nl/beeldnet'] })
    const env = { BEELDNET_REGISTRY_URL: 'http://127.0.0.1:8480', BEELDNET_REGISTRY_POLL_INTERVAL_SECONDS: '60', BEELDNET_REGISTRY_MIRRORS: 'https://a.example, https://b.example' }
    expect(parseConfig(file, env).registry).toEqual({ url: 'http://127.0.0.1:8480', pollIntervalSeconds: 60, mirrors: ['https://a.example', 'https://b.example'] })
  })

  it('p2p addresses come from the file or the environment; lists comma-separated', () => {
    const file = 'p2p:\n  listen: [/ip4/0.0.0.0/tcp/4001, /ip6/::/tcp/4001]\n  announce: [/dns4/beeldnet.ziekenhuis.nl/tcp/4001]\n'
    expect(parseConfig(file, {}).p2p).toEqual({ listen: ['/ip4/0.0.0.0/tcp/4001', '/ip6/::/tcp/4001'], announce: ['/dns4/beeldnet.ziekenhuis.nl/tcp/4001'], streamWindowBytes: 1024 * 1024, dataChannel: 'tls', dataPort: 0, inboundConnectionsPerSecond: 5 })
    const env = { BEELDNET_P2P_LISTEN: '/ip4/10.0.0.5/tcp/4001, /ip4/127.0.0.1/tcp/4002', BEELDNET_P2P_ANNOUNCE: '', BEELDNET_P2P_STREAM_WINDOW_BYTES: '4194304', BEELDNET_P2P_INBOUND_CONNECTIONS_PER_SECOND: '100' }
    expect(parseConfig(file, env).p2p).toEqual({ listen: ['/ip4/10.0.0.5/tcp/4001', '/ip4/127.0.0.1/tcp/4002'], announce: [], streamWindowBytes: 4 * 1024 * 1024, dataChannel: 'tls', dataPort: 0, inboundConnectionsPerSecond: 100 })
  })

  it('refuses a stream window outside 256 KiB to 64 MiB with a clear error', () => {
    expect(() => parseConfig('p2p:\n  streamWindowBytes: 1000\n', {})).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_CONFIG' }))
    expect(() => parseConfig('', { BEELDNET_P2P_STREAM_WINDOW_BYTES: String(128 * 1024 * 1024) })).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_CONFIG' }))
  })

  it('updateConfigFile sets one value and keeps the comments', async () => {
    const path = join(await tempDir('config'), 'beeldnet.yaml')
    await writeFile(path, defaultConfigText('Noord'))
    await updateConfigFile(path, ['registry', 'url'], 'https://registry.example.nl')
    const text = await readFile(path, 'utf8')
    expect(parseConfig(text, {}).registry.url).toBe('https://registry.example.nl')
    expect(text).toContain('# How often to ask the registry for a newer directory.')
    expect(text).toContain('# Where the HTTP server')
    await expect(updateConfigFile(path, ['registry', 'url'], 'ftp://x')).rejects.toMatchObject({ code: 'BEELDNET_ERR_CONFIG' })
    expect(await readFile(path, 'utf8')).toBe(text)
  })

  it('an empty file gives every default', () => {
    expect(parseConfig('', {}).http.port).toBe(8470)
  })

  it.each([
    ['a misspelt key', 'http:\n  prot: 80\n', 'http: Unrecognized key'],
    ['an unknown section', 'peers:\n  max: 3\n', 'Unrecognized key'],
    ['a port out of range', 'http:\n  port: 70000\n', 'http.port'],
    ['a bad log level', 'log:\n  level: loud\n', 'log.level'],
    ['broken YAML', 'http: [\n', 'not valid YAML'],
    ['a registry URL that is not http(s)', 'registry:\n  url: ftp://registry.example.nl\n', 'registry.url'],
    ['a poll interval of zero', 'registry:\n  pollIntervalSeconds: 0\n', 'registry.pollIntervalSeconds'],
    ['a listen address that is not a multiaddr', 'p2p:\n  listen: [0.0.0.0:4001]\n', 'p2p.listen.0'],
    ['no listen address at all', 'p2p:\n  listen: []\n', 'p2p.listen'],
    ['auth switched off (a config from before it was always on)', "http:\n  auth: 'off'\n", 'http.auth can only be required']
  ])('refuses %s with BEELDNET_ERR_CONFIG naming the setting', (_label, text, fragment) => {
    expect(() => parseConfig(text, {})).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_CONFIG', message: expect.stringContaining(fragment) }))
  })

  it('refuses a bad environment override too', () => {
    expect(() => parseConfig('', { BEELDNET_HTTP_PORT: 'eighty' })).toThrow(expect.objectContaining({ code: 'BEELDNET_ERR_CONFIG', message: expect.stringContaining('http.port') }))
  })
})
