import { defineConfig } from 'vitest/config'
import { PATIENCE_MS, TEST_BUDGET_MS } from './test/helpers/patience.ts'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Tests wait for states and events, not for time (test/helpers/patience.ts): these limits only end a hang.
    testTimeout: TEST_BUDGET_MS,
    hookTimeout: TEST_BUDGET_MS,
    expect: { poll: { timeout: PATIENCE_MS } },
    // Suites start real processes and write real files; two cores, so keep parallelism modest.
    maxWorkers: 2
  }
})
