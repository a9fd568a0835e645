// The `beeldnet` command (bin/beeldnet runs it on the pinned Node with the node's runtime flags).
import { enableCompileCache } from 'node:module'

// Cached compiled code (and TypeScript with its types stripped) spares every later start the
// compiler: about 25 MB less resident memory for a node process, for the process's whole life.
// Enabled before the program is imported, which is why that import is dynamic.
enableCompileCache()
const { createProgram } = await import('./program.ts')
await createProgram().parseAsync(process.argv)
