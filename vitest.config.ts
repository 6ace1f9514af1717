import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // offers one private PostgreSQL cluster per run, started only when a test asks for a database
    globalSetup: ['test/helpers/postgres-global.ts'],
  },
});
