import { defineConfig } from '@playwright/test';
import base from './playwright.config';

// Measurements, not tests: `npx playwright test --config bench.config.ts` prints figures.
export default defineConfig({
  ...base,
  testDir: './bench',
  testMatch: '**/*.bench.ts',
  timeout: 180_000,
});
