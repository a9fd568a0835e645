// Shared by every beeldnet verb (node, registry, governance), so scripts see one output contract:
// --json on stdout, errors as `error CODE: message` or {"error":{code,message}}.
import cliProgress from 'cli-progress'
import { isBeeldnetError } from '../errors.ts'

/** How a verb talks: JSON for scripts, or text plus a progress bar on a terminal and plain lines otherwise. */
export interface Output {
  json: boolean
  /** the verb's result: printed as JSON with --json, else via `text` */
  result (value: unknown, text: () => string): void
  info (line: string): void
  progress (label: string): Progress
}

export interface Progress {
  start (total: number): void
  update (done: number, detail?: string): void
  stop (): void
}

export function createOutput (json: boolean, stream: NodeJS.WriteStream = process.stderr): Output {
  return {
    json,
    result (value, text) {
      process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : text() + '\n')
    },
    info (line) {
      if (!json) stream.write(line + '\n')
    },
    progress (label) {
      if (json) return { start () {}, update () {}, stop () {} }
      return stream.isTTY === true ? barProgress(label, stream) : lineProgress(label, stream)
    }
  }
}

function barProgress (label: string, stream: NodeJS.WriteStream): Progress {
  const bar = new cliProgress.SingleBar({
    stream,
    format: `${label} [{bar}] {value}/{total} {percentage}% | eta {eta_formatted}`,
    hideCursor: true
  }, cliProgress.Presets.shades_classic)
  return {
    start (total) { bar.start(total, 0) },
    update (done) { bar.update(done) },
    stop () { bar.stop() }
  }
}

/** Off a terminal (logs, CI) a line every 10% or so, never a bar's control characters. */
function lineProgress (label: string, stream: NodeJS.WriteStream): Progress {
  let total = 0
  let lastTenth = -1
  return {
    start (t) { total = t; stream.write(`${label}: ${t} to do\n`) },
    update (done, detail) {
      const tenth = total === 0 ? 10 : Math.floor((done / total) * 10)
      if (tenth !== lastTenth) {
        lastTenth = tenth
        stream.write(`${label}: ${done}/${total}${detail === undefined ? '' : ` (${detail})`}\n`)
      }
    },
    stop () {}
  }
}

/** Prints an error the way scripts and people both can use: the stable code first. */
export function reportError (err: unknown, json: boolean): number {
  if (isBeeldnetError(err)) {
    if (json) process.stdout.write(JSON.stringify({ error: { code: err.code, message: err.message } }) + '\n')
    else process.stderr.write(`error ${err.code}: ${err.message}\n`)
    return 1
  }
  process.stderr.write(`unexpected error: ${(err as Error).stack ?? String(err)}\n`)
  return 70
}
