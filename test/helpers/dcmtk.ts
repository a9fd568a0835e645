// dcmtk's command-line tools (echoscu, storescu, findscu, movescu, getscu, storescp) as a PACS would use them.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { freePort } from '../../simulations/bench/processes.ts'
import type { CliResult } from './beeldnet-cli.ts'
import { PATIENCE_MS, until } from './patience.ts'

export async function dcmtk (tool: string, args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(tool, args, { maxBuffer: 16 * 1024 * 1024, timeout: PATIENCE_MS }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1
      resolve({ code, stdout, stderr })
    })
  })
}

export interface Storescp {
  port: number
  stop: () => Promise<void>
  files: () => Promise<string[]>
  /** waits until `count` files are there and none has grown for a moment (storescp writes as it receives) */
  settled: (count: number, timeoutMs?: number) => Promise<string[]>
}

/**
 * `port`: where it listens (default a free one), so a PACS can come back on the port it had;
 * `options`: more storescp options (`+xa`: accept compressed transfer syntaxes too).
 */
export async function startStorescp (aeTitle: string, dir: string, port?: number, options: string[] = []): Promise<Storescp> {
  port ??= await freePort()
  const child: ChildProcess = spawn('storescp', ['--aetitle', aeTitle, '-od', dir, '+B', ...options, String(port)], { stdio: 'ignore' })
  // Ready when it answers an echo.
  await until(async () => (await dcmtk('echoscu', ['-aec', aeTitle, '127.0.0.1', String(port)])).code === 0, `storescp ${aeTitle} on port ${port} to answer a C-ECHO`, PATIENCE_MS, 50)
  return {
    port,
    files: async () => (await readdir(dir)).sort(),
    settled: async (count, timeoutMs = PATIENCE_MS) => {
      const deadline = Date.now() + timeoutMs
      let last = -1
      for (;;) {
        const names = (await readdir(dir)).sort()
        const total = (await Promise.all(names.map(async (n) => (await stat(join(dir, n))).size))).reduce((a, b) => a + b, 0)
        if (names.length >= count && total === last) return names
        if (Date.now() > deadline) return names
        last = names.length >= count ? total : -1
        await delay(200)
      }
    },
    stop: async () => {
      // Killed by a signal, it has a signalCode and no exitCode: stopped already, and no 'exit' comes again.
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  }
}
