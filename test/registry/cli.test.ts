import { spawn } from 'node:child_process'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, expect, it, onTestFinished } from 'vitest'
import { generateKeyPair } from '../../protocol/keys.ts'
import { useTempDirs } from '../helpers/temp-dir.ts'
import { beeldnetMain, runBeeldnet, type CliResult } from '../helpers/beeldnet-cli.ts'

const tempDir = useTempDirs()
const main = beeldnetMain
const cli = async (...args: string[]): Promise<CliResult> => runBeeldnet(args, { BEELDNET_REGISTRY_DATA_DIR: '' })

describe('beeldnet registry CLI', () => {
  it('has --help on every verb', async () => {
    const verbs = ['init', 'start', 'status']
    const answers = await Promise.all(verbs.map(async (verb) => cli('registry', verb, '--help')))
    for (const [i, r] of answers.entries()) {
      expect(r.code, verbs[i]).toBe(0)
      expect(r.stdout).toContain(`Usage: beeldnet registry ${verbs[i]!}`)
    }
  })

  it('init prints the root candidate hash and keyids, keeps the timestamp key owner-only, and never overwrites', async () => {
    const dir = join(await tempDir('registry-cli'), 'data')
    const keys = [generateKeyPair(), generateKeyPair(), generateKeyPair()]
    const args = ['registry', '--data-dir', dir, '--json', 'init', '--network', 'beeldnet-nl', '--threshold', '2', '--port', '0',
      ...keys.flatMap((k, i) => ['--governance-key', `${k.publicKey}:lid ${i + 1}`])]
    const r = await cli(...args)
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as { rootHash: string, keyids: string[], threshold: number }
    expect(out.keyids).toEqual(keys.map((k) => k.keyid))
    expect(out.rootHash).toMatch(/^[0-9a-f]{64}$/)
    expect((await stat(join(dir, 'timestamp.key'))).mode & 0o777).toBe(0o600)
    const config = await readFile(join(dir, 'registry.yaml'), 'utf8')
    expect(config).toMatch(/^# /m)
    expect(config).toContain('network: beeldnet-nl')

    const again = await cli(...args)
    expect(again.code).toBe(1)
    expect(again.stdout).toContain('BEELDNET_ERR_ALREADY_INITIALISED')

    const bad = await cli('registry', '--data-dir', join(dir, 'x'), 'init', '--network', 'beeldnet-nl', '--threshold', '4', '--governance-key', keys[0]!.publicKey)
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain('BEELDNET_ERR_SCHEMA')

    // start logs pino JSON, serves the candidate, and stops cleanly on SIGTERM.
    const child = spawn(process.execPath, [main, 'registry', '--data-dir', dir, 'start'], { stdio: ['ignore', 'pipe', 'pipe'] })
    // A failed assertion must not leave the registry running after the suite.
    onTestFinished(() => { if (child.exitCode === null) child.kill('SIGKILL') })
    const lines = createInterface({ input: child.stdout })
    let url = ''
    for await (const line of lines) {
      const entry = JSON.parse(line) as { msg: string, url?: string }
      if (entry.msg === 'registry started') { url = entry.url!; break }
    }
    const candidate = await (await fetch(`${url}/v1/candidate`)).json() as { hash: string, kind: string }
    expect(candidate).toMatchObject({ kind: 'root', hash: out.rootHash })
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
  })
})
