import js from '@eslint/js'
import { createNodeResolver, importX } from 'eslint-plugin-import-x'
import tseslint from 'typescript-eslint'

/*
 * The folders' boundaries (docs/architecture.md, "Folders"): `protocol/` is what two parties agree on and
 * imports nothing of ours; `node/` and `registry/` share only `protocol/`; the web app runs in a
 * browser and may use only the API's shapes in `protocol/api/`. Inside `node/`, `p2p/` (host, gating, gossip,
 * framing) knows nothing of `transfers/` (the operations on top of it). Crossing one fails the lint.
 */
const ours = ['./bin', './node', './registry', './simulations', './test', './web', './types']
const boundaries = [
  { target: './protocol', from: ours, message: 'protocol/ is what two parties agree on: it imports nothing of ours.' },
  { target: './node', from: ['./registry', './web', './simulations', './test'], message: 'node/ imports only protocol/ (what it shares with the registry lives there).' },
  { target: './registry', from: ['./node', './web', './simulations', './test'], message: 'registry/ imports only protocol/ (what it shares with the node lives there).' },
  { target: './web', from: ours.filter((f) => f !== './web'), message: 'the web app runs in a browser: it imports only protocol/api/.' },
  { target: './web', from: './protocol', except: ['./api'], message: 'the web app runs in a browser: it imports only protocol/api/.' },
  { target: './node/p2p', from: './node/transfers', message: 'p2p/ is the host, gating, gossip and framing: the transfers use it, never the other way round.' }
]

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', '.beeldnet/**', 'web/dist/**', 'test-output/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }]
    }
  },
  {
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.tsx', '.js'] })] },
    rules: {
      'import-x/no-restricted-paths': ['error', { basePath: import.meta.dirname, zones: boundaries }]
    }
  }
)
