import { register } from 'node:module';

// `node --import ./test/helpers/module-log.mjs ...`: see module-log-hooks.mjs.
register('./module-log-hooks.mjs', import.meta.url);
