import { defineConfig } from 'vite'

// The node's web app: built to web/dist, served by the node's fastify. No framework plugin: Preact's
// JSX is compiled by Vite's own transformer.
export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  logLevel: 'warn',
  build: { outDir: 'dist', emptyOutDir: true, assetsInlineLimit: 0, sourcemap: false },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } }
})
