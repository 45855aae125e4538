import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Tests run the TypeScript sources directly; no build step needed before `npm test`.
    alias: [
      {
        find: /^@titanbot\/contracts\/es\/(.*)$/,
        replacement: `${fileURLToPath(new URL('./packages/contracts/src/es/', import.meta.url))}$1.ts`,
      },
      {
        find: /^@titanbot\/contracts\/(.*)$/,
        replacement: `${fileURLToPath(new URL('./packages/contracts/src/gen/', import.meta.url))}$1.ts`,
      },
      {
        find: /^@titanbot\/service-kit\/(.*)$/,
        replacement: `${fileURLToPath(new URL('./packages/service-kit/src/', import.meta.url))}$1.ts`,
      },
      {
        find: /^@titanbot\/daemon-client$/,
        replacement: fileURLToPath(new URL('./packages/daemon-client/src/index.ts', import.meta.url)),
      },
    ],
  },
  test: {
    include: ['services/*/src/**/*.test.ts', 'services/*/test/**/*.test.ts', 'packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['./test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Integration suites share one PostgreSQL database; run files one at a time.
    fileParallelism: false,
  },
});
