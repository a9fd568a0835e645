/*
 * What a node gives back once it has started. Starting runs much code once (the config and every
 * schema built and checked, the directory verified, fastify's routes registered) and leaves its
 * garbage and that code's bytecode in the heap; an idle node allocates too little for V8 to
 * collect again on its own, so it would keep them for as long as it idles. V8's last-resort
 * collection compacts the heap and drops the bytecode of functions not running (compiled again if
 * ever called): 6-10 MB less idle RSS (bench:idle), for one pause of about 150 ms (it runs full
 * collections until one frees nothing more) right after the start.
 */

interface GcOptions { type: 'major', execution: 'sync', flavor: 'last-resort' }

/**
 * Collects what starting left behind, when Node exposes its collector (bin/beeldnet runs the node
 * with --expose-gc); otherwise does nothing. Says whether it collected.
 */
export function releaseStartMemory (): boolean {
  const gc = (globalThis as { gc?: (options: GcOptions) => void }).gc
  if (gc === undefined) return false
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' })
  return true
}
