import { createTemplate, dropTemplate } from './helpers/db.js';

// Migrate the template database once per run; every test file clones it.
export async function mochaGlobalSetup(): Promise<void> {
  await createTemplate();
}

export async function mochaGlobalTeardown(): Promise<void> {
  await dropTemplate();
}
