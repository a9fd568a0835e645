import { defineConfig } from 'vite'

// The node's web app: built to web/dist, served by the node's fastify. No framework plugin: Preact's
// JSX is compiled by Vite's own transformer. The viewer (Cornerstone3D, vtk.js) is a chunk of its
// own, loaded only when a viewer page opens; its decoders are a module worker and WebAssembly files
// emitted next to it, all served by the node. Asset paths are relative: the same build serves the
// app at / and a patient's share page at /share/<token> (which asks /share/assets/..., the only
// prefix IT needs to expose to the internet).
export default defineConfig({
  root: import.meta.dirname,
  base: './',
  logLevel: 'warn',
  build: { outDir: 'dist', emptyOutDir: true, assetsInlineLimit: 0, sourcemap: false, chunkSizeWarningLimit: 4096 },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  resolve: { alias: { xmlbuilder2: `${import.meta.dirname}/src/viewer/xmlbuilder2-stub.ts` } },
  worker: { format: 'es' }
})
