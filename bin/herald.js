#!/usr/bin/env node
// `herald`: runs the compiled CLI (dist/, built by `npm run build`; `npm ci`
// builds it through the prepare script). When dist/ is missing or older than
// a source file (a developer edited src/ and did not rebuild), it runs the
// sources through tsx instead, so a command never runs stale code; on a
// terminal it says so in one line. See docs/decisions/0004-lazy-command-loading.md.
import module from 'node:module';
import { pathToFileURL } from 'node:url';
import { compiledState, COMPILED_MAIN, SOURCE_MAIN } from './compiled.js';

// Node >= 22.1 keeps V8's compiled code of every module on disk (in the OS
// temp dir), so the next start skips most parsing; Node 20 lacks it.
module.enableCompileCache?.();

const state = compiledState();
if (state === 'fresh') {
  await import(pathToFileURL(COMPILED_MAIN).href);
} else {
  if (process.stderr.isTTY) {
    process.stderr.write(`herald: ${state === 'missing' ? 'not built yet' : 'src/ changed since the last build'}; running the sources through tsx (slower start; \`npm run build\` fixes it)\n`);
  }
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(SOURCE_MAIN).href);
}
