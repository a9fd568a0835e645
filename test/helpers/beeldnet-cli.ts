// Runs the real `beeldnet` program in a child process, as an operator would.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'

export const beeldnetMain = join(import.meta.dirname, '..', '..', 'bin', 'beeldnet.ts')

export interface CliResult { code: number, stdout: string, stderr: string }

export async function runBeeldnet (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return promisify(execFile)(process.execPath, [beeldnetMain, ...args], { maxBuffer: 16 * 1024 * 1024, env: { ...process.env, ...env } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number, stdout: string, stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr })
  )
}
