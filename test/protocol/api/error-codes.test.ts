import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ERRORS, isErrorCode, statusOf, type ErrorCode } from '../../../protocol/api/error-codes.ts'
import { BeeldnetError, PassedOnError, RegistryRefusedError } from '../../../protocol/errors.ts'

const root = join(import.meta.dirname, '..', '..', '..')
const codes = Object.keys(ERRORS) as ErrorCode[]

type ErrorClass = abstract new (...args: never[]) => BeeldnetError

/** Every class exported by an errors.ts under protocol/, node/, registry/ and simulations/ (the web app has none). */
async function errorClasses (): Promise<ErrorClass[]> {
  const found = new Set<ErrorClass>()
  for (const dir of ['protocol', 'node', 'registry', 'simulations']) {
    for (const entry of await readdir(join(root, dir), { withFileTypes: true, recursive: true })) {
      if (!entry.isFile() || entry.name !== 'errors.ts') continue
      const exports = await import(join(entry.parentPath, entry.name)) as Record<string, unknown>
      for (const value of Object.values(exports)) {
        if (typeof value === 'function' && value.prototype instanceof BeeldnetError) found.add(value as ErrorClass)
      }
    }
  }
  return [...found]
}

// Stands in for any constructor argument (a string, a list, a date, a cause): every property and
// call gives itself again, and it prints as 'x'. So each class can be built without knowing its arguments.
const anything: unknown = new Proxy(function () {}, {
  get: (_target, key) => key === Symbol.toPrimitive ? () => 'x' : anything,
  apply: () => anything
})

function codeOf (type: ErrorClass): ErrorCode {
  return (Reflect.construct(type, [anything, anything, anything, anything]) as BeeldnetError).code
}

function documented (doc: string): Map<string, number> {
  return new Map([...doc.matchAll(/^\| `(BEELDNET_ERR_[A-Z0-9_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])]))
}

describe('the error record', () => {
  it('gives each code its one class: every error class raises a code recorded as its own (or its parent\'s), and every recorded class exists', async () => {
    const classes = await errorClasses()
    expect(classes.length).toBeGreaterThan(100)
    const byName = Map.groupBy(classes, (type) => type.name)
    // A passed-on refusal carries the code another party chose; that code's own class is checked here.
    const own = classes.filter((type) => type !== PassedOnError && !(type.prototype instanceof PassedOnError))

    const strays = own.flatMap((type) => {
      const code = codeOf(type)
      const recorded = isErrorCode(code) ? ERRORS[code].class : undefined
      const owner = recorded === undefined || recorded === null ? undefined : byName.get(recorded)?.[0]
      return owner !== undefined && (type === owner || type.prototype instanceof owner) ? [] : [`${type.name} raises ${String(code)}, recorded for ${String(recorded)}`]
    })
    expect(strays).toEqual([])

    const missing = codes.filter((code) => ERRORS[code].class !== null && byName.get(ERRORS[code].class)?.length !== 1)
    expect(missing).toEqual([])

    // A code recorded without a class is only ever sent as data (a pull refusal, a health problem): no class raises it.
    const raised = new Set(own.map(codeOf))
    expect(codes.filter((code) => ERRORS[code].class === null && raised.has(code))).toEqual([])
  })

  it('has a status for every code, the one statusOf gives', () => {
    for (const code of codes) {
      expect(ERRORS[code].status, code).toBeGreaterThanOrEqual(400)
      expect(ERRORS[code].status, code).toBeLessThan(600)
      expect(statusOf(code)).toBe(ERRORS[code].status)
    }
  })

  it('takes over a passed-on code only when it is declared', () => {
    expect(isErrorCode('BEELDNET_ERR_NOT_PUBLISHED')).toBe(true)
    expect(isErrorCode('BEELDNET_ERR_FROM_THE_FUTURE')).toBe(false)
    expect(isErrorCode('toString')).toBe(false)
    expect(isErrorCode(42)).toBe(false)

    expect(new RegistryRefusedError('BEELDNET_ERR_NOT_PUBLISHED', 'nothing yet')).toMatchObject({ code: 'BEELDNET_ERR_NOT_PUBLISHED', remoteCode: 'BEELDNET_ERR_NOT_PUBLISHED', message: 'nothing yet' })
    const unknown = new RegistryRefusedError('BEELDNET_ERR_FROM_THE_FUTURE', 'no idea')
    expect(unknown).toMatchObject({ code: 'BEELDNET_ERR_REGISTRY_RESPONSE', remoteCode: 'BEELDNET_ERR_FROM_THE_FUTURE' })
    expect(unknown.message).toContain('BEELDNET_ERR_FROM_THE_FUTURE')
    expect(new RegistryRefusedError(undefined, 'answered 500')).toMatchObject({ code: 'BEELDNET_ERR_REGISTRY_RESPONSE', remoteCode: '', message: 'answered 500' })
  })
})

describe('docs/errors.md', () => {
  it('documents every code with the status the record gives, and no code the record lacks', async () => {
    const doc = await readFile(join(root, 'docs', 'errors.md'), 'utf8')
    expect(Object.fromEntries(documented(doc))).toEqual(Object.fromEntries(codes.map((code) => [code, ERRORS[code].status])))
  })

  it('lists exactly the codes a transfer does not retry, and marks no retried code final', async () => {
    const doc = await readFile(join(root, 'docs', 'errors.md'), 'utf8')
    const section = doc.slice(doc.indexOf('## Retried or final'))
    const listed = [...section.slice(0, section.indexOf('\n## ', 1)).matchAll(/^- `(BEELDNET_ERR_[A-Z0-9_]+)`$/gm)].map((m) => m[1]!)
    expect(listed.sort()).toEqual(codes.filter((code) => !ERRORS[code].retry).sort())

    const markedFinal = [...doc.matchAll(/^\| `(BEELDNET_ERR_[A-Z0-9_]+)` \|[^|]*\|[^|]*\(final\)[^|]*\|/gm)].map((m) => m[1] as ErrorCode)
    expect(markedFinal.length).toBeGreaterThan(5)
    expect(markedFinal.filter((code) => ERRORS[code].retry)).toEqual([])
  })
})
