import { createTemplate, dropTemplate } from './helpers/db.js';

// See src/cli/main.ts: the AWS SDK's Node 20 notice, in every worker child too.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// Migrate the template database once per run; every test file clones it.
export async function mochaGlobalSetup(): Promise<void> {
  await createTemplate();
}

export async function mochaGlobalTeardown(): Promise<void> {
  await dropTemplate();
}
