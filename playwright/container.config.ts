import { defineConfig } from '@playwright/test';
import base from './playwright.config';

// The relay's container image (scripts/image.sh), run with podman: `P2P_CHAT_IMAGE=NAME npx
// playwright test --config container.config.ts`. scripts/test.sh builds the image first.
export default defineConfig({
  ...base,
  testDir: './container',
  timeout: 180_000,
});
