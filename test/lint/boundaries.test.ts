import { join } from 'node:path'
import { ESLint } from 'eslint'
import { describe, expect, it } from 'vitest'

/*
 * The folders' boundaries are enforced by the project's own lint configuration: a file that
 * crosses one fails `npm run lint`. Each probe is linted as if it were a file at that path.
 */

const root = join(import.meta.dirname, '..', '..')
const RULE = 'import-x/no-restricted-paths'

async function boundaryErrors (filePath: string, source: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: root })
  const [result] = await eslint.lintText(source, { filePath: join(root, filePath) })
  return result!.messages.filter((m) => m.ruleId === RULE).map((m) => m.message)
}

describe('folder boundaries in the lint', () => {
  it.each([
    ['protocol/probe.ts', 'import { StudyStore } from \'../node/store/study-store.ts\'\nexport const x = StudyStore\n', 'protocol/ is what two parties agree on'],
    ['protocol/api/probe.ts', 'import { ERRORS } from \'../../registry/errors.ts\'\nexport const x = ERRORS\n', 'protocol/ is what two parties agree on'],
    ['node/probe.ts', 'import * as registry from \'../registry/errors.ts\'\nexport const x = registry\n', 'node/ imports only protocol/'],
    ['node/store/probe.ts', 'export { createRegistryServer } from \'../../registry/http/server.ts\'\n', 'node/ imports only protocol/'],
    ['registry/probe.ts', 'import * as node from \'../node/errors.ts\'\nexport const x = node\n', 'registry/ imports only protocol/'],
    ['web/src/probe.ts', 'import * as p from \'../../protocol/errors.ts\'\nexport const x = p\n', 'it imports only protocol/api/'],
    ['web/src/probe.ts', 'import * as n from \'../../node/errors.ts\'\nexport const x = n\n', 'it imports only protocol/api/'],
    ['node/p2p/probe.ts', 'import type { Exchange } from \'../transfers/exchange.ts\'\nexport type X = Exchange\n', 'the transfers use it, never the other way round']
  ])('%s crossing a boundary fails the lint', async (file, source, why) => {
    const errors = await boundaryErrors(file, source)
    expect(errors).toHaveLength(1)
    expect(errors[0]).toContain(why)
  })

  it.each([
    ['node/probe.ts', 'import * as p from \'../protocol/errors.ts\'\nexport const x = p\n'],
    ['registry/probe.ts', 'import * as p from \'../protocol/canonical.ts\'\nexport const x = p\n'],
    ['web/src/probe.ts', 'import type { InboxEntry } from \'../../protocol/api/inbox.ts\'\nexport type X = InboxEntry\n'],
    ['protocol/probe.ts', 'import * as p from \'./canonical.ts\'\nexport const x = p\n'],
    ['node/transfers/probe.ts', 'import type { P2PHost } from \'../p2p/host.ts\'\nexport type X = P2PHost\n'],
    ['test/probe.test.ts', 'import * as n from \'../node/errors.ts\'\nimport * as r from \'../registry/errors.ts\'\nexport const x = [n, r]\n']
  ])('%s importing within its bounds passes', async (file, source) => {
    expect(await boundaryErrors(file, source)).toEqual([])
  })
})
