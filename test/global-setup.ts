import { build } from 'vite'

/* The nodes serve the web app from web/dist: build it once before the suites (about a second). */
export default async function setup (): Promise<void> {
  await build({ configFile: new URL('../web/vite.config.ts', import.meta.url).pathname, logLevel: 'warn' })
}
