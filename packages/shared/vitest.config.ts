import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: '@rdmaq/shared', include: ['src/**/*.test.ts', 'test/**/*.test.ts'] },
});
