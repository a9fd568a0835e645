// dcmtk's command-line tools (echoscu, storescu, findscu, movescu, getscu, storescp) as a PACS would use them.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readdir } from 'node:fs/promises'
import { createServer } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import type { CliResult } from './beeldnet-cli.ts'

export async function dcmtk (tool: string, args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(tool, args, { maxBuffer: 16 * 1024 * 1024, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1
      resolve({ code, stdout, stderr })
    })
  })
}

export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

/** A storescp "PACS" writing what it receives to `dir` bit-preserved (+B); stop() ends it. */
export async function startStorescp (aeTitle: string, dir: string): Promise<{ port: number, stop: () => Promise<void>, files: () => Promise<string[]> }> {
  const port = await freePort()
  const child: ChildProcess = spawn('storescp', ['--aetitle', aeTitle, '-od', dir, '+B', String(port)], { stdio: 'ignore' })
  // Ready when it answers an echo.
  for (let i = 0; i < 100; i++) {
    if ((await dcmtk('echoscu', ['-aec', aeTitle, '127.0.0.1', String(port)])).code === 0) break
    await delay(50)
  }
  return {
    port,
    files: async () => (await readdir(dir)).sort(),
    stop: async () => {
      if (child.exitCode !== null) return
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  }
}
