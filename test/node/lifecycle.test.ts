import { describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { createLifecycle, madeAtStart, type Lifecycle, type NamedPart, type Startable } from '../../node/lifecycle.ts'

/** Plain parts that write what happens to them into one journal; `failing` ones throw on start or stop. */
function fakeParts (names: string[], failing: { start?: string, stop?: string[] } = {}): { parts: NamedPart[], journal: string[], startError: Error } {
  const journal: string[] = []
  const startError = new Error(`${failing.start ?? 'nothing'} cannot start`)
  const parts = names.map((name): NamedPart => ({
    name,
    part: {
      async start () {
        if (failing.start === name) throw startError
        journal.push(`start ${name}`)
      },
      async stop () {
        journal.push(`stop ${name}`)
        if (failing.stop?.includes(name) === true) throw new Error(`${name} cannot stop`)
      }
    }
  }))
  return { parts, journal, startError }
}

function recordingLogger (): { logger: pino.Logger, lines: Array<{ level: number, msg: string, part?: string }> } {
  const lines: Array<{ level: number, msg: string, part?: string }> = []
  return { logger: pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as { level: number, msg: string }) } }), lines }
}

const names = ['store', 'audit', 'host', 'queue', 'http']

describe('lifecycle', () => {
  it('starts the parts in order and stops them in reverse', async () => {
    const { parts, journal } = fakeParts(names)
    const lifecycle = createLifecycle({ logger: pino({ level: 'silent' }) }, { parts })
    await lifecycle.start()
    expect(lifecycle.running).toEqual(names)
    await lifecycle.stop()
    expect(journal).toEqual([...names.map((n) => `start ${n}`), ...names.toReversed().map((n) => `stop ${n}`)])
    expect(lifecycle.running).toEqual([])
  })

  it.each(names.map((name, i) => [name, i] as const))('a part failing to start (%s) stops the ones started before it, in reverse, and the error is the part\'s own', async (failing, i) => {
    const { parts, journal, startError } = fakeParts(names, { start: failing })
    const lifecycle = createLifecycle({ logger: pino({ level: 'silent' }) }, { parts })
    await expect(lifecycle.start()).rejects.toBe(startError)
    const before = names.slice(0, i)
    expect(journal).toEqual([...before.map((n) => `start ${n}`), ...before.toReversed().map((n) => `stop ${n}`)])
    expect(lifecycle.running).toEqual([])
    // Safe after a failed start: nothing is stopped twice.
    await lifecycle.stop()
    expect(journal).toHaveLength(before.length * 2)
  })

  it('a part failing to stop while a failed start is undone is logged, the others still stop, and the start error is the one thrown', async () => {
    const { parts, journal, startError } = fakeParts(names, { start: 'http', stop: ['audit'] })
    const { logger, lines } = recordingLogger()
    const lifecycle = createLifecycle({ logger }, { parts })
    await expect(lifecycle.start()).rejects.toBe(startError)
    expect(journal.filter((e) => e.startsWith('stop'))).toEqual(['stop queue', 'stop host', 'stop audit', 'stop store'])
    expect(lines).toContainEqual(expect.objectContaining({ part: 'http', msg: expect.stringContaining('did not start') }))
    expect(lines).toContainEqual(expect.objectContaining({ part: 'audit', level: 50, msg: 'audit did not stop cleanly' }))
  })

  it('stop tries every part even when one throws, logs it, and throws the first error', async () => {
    const { parts, journal } = fakeParts(names, { stop: ['queue', 'audit'] })
    const { logger, lines } = recordingLogger()
    const lifecycle = createLifecycle({ logger }, { parts })
    await lifecycle.start()
    await expect(lifecycle.stop()).rejects.toThrow('queue cannot stop')
    expect(journal.filter((e) => e.startsWith('stop'))).toEqual(names.toReversed().map((n) => `stop ${n}`))
    expect(lines.filter((l) => l.msg.endsWith('did not stop cleanly')).map((l) => l.part)).toEqual(['queue', 'audit'])
    // Idempotent: a second stop has nothing left to stop.
    await lifecycle.stop()
    expect(journal.filter((e) => e.startsWith('stop'))).toHaveLength(names.length)
  })

  it('stop before start does nothing; a second start is the same start; it starts again after a stop', async () => {
    const { parts, journal } = fakeParts(names)
    const lifecycle = createLifecycle({ logger: pino({ level: 'silent' }) }, { parts })
    await lifecycle.stop()
    expect(journal).toEqual([])
    await Promise.all([lifecycle.start(), lifecycle.start()])
    await lifecycle.start()
    expect(journal).toEqual(names.map((n) => `start ${n}`))
    await lifecycle.stop()
    await lifecycle.start()
    expect(lifecycle.running).toEqual(names)
    await lifecycle.stop()
  })

  it('stop during a start waits for it, then stops everything it started', async () => {
    const { parts, journal } = fakeParts(names)
    let release!: () => void
    const held = new Promise<void>((resolve) => { release = resolve })
    const slow: NamedPart = { name: 'slow', part: { start: async () => { await held; journal.push('start slow') }, stop: async () => { journal.push('stop slow') } } }
    const lifecycle = createLifecycle({ logger: pino({ level: 'silent' }) }, { parts: [parts[0]!, slow, ...parts.slice(1)] })
    const starting = lifecycle.start()
    const stopping = lifecycle.stop()
    release()
    await starting
    await stopping
    expect(lifecycle.running).toEqual([])
    expect(journal.filter((e) => e.startsWith('stop'))).toEqual([...names.slice(1).toReversed().map((n) => `stop ${n}`), 'stop slow', 'stop store'])
  })

  it('an aborted start stops what it started and throws the abort reason', async () => {
    const controller = new AbortController()
    const { journal } = fakeParts([])
    const abortAfterFirst: NamedPart = { name: 'first', part: { start: async () => { journal.push('start first'); controller.abort(new Error('shutting down')) }, stop: async () => { journal.push('stop first') } } }
    const second: NamedPart = { name: 'second', part: { start: async () => { journal.push('start second') }, stop: async () => { journal.push('stop second') } } }
    const lifecycle: Lifecycle = createLifecycle({ logger: pino({ level: 'silent' }) }, { parts: [abortAfterFirst, second] })
    await expect(lifecycle.start(controller.signal)).rejects.toThrow('shutting down')
    expect(journal).toEqual(['start first', 'stop first'])
  })

  it('madeAtStart makes a part only when its turn comes, so nothing after a failed part is ever made', async () => {
    const made: string[] = []
    const making = (name: string, part: Startable): NamedPart => ({ name, part: madeAtStart(() => { made.push(name); return part }) })
    const { parts, startError } = fakeParts(['a', 'b', 'c'], { start: 'b' })
    const lifecycle = createLifecycle({ logger: pino({ level: 'silent' }) }, { parts: parts.map((p) => making(p.name, p.part)) })
    await expect(lifecycle.start()).rejects.toBe(startError)
    expect(made).toEqual(['a', 'b'])
  })
})
