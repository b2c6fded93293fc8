import { loadConfig } from '../../src/config.js';
import { wire, type ServiceOverrides, type Wiring } from '../../src/cli/wiring.js';
import type { JobDefinition } from '../../src/jobs/contract/types.js';
import { createLogger } from '../../src/log.js';

// Tests take job definitions, hooks and routes from the composition root, as
// every Herald process does, with the services they set up handed in.

export function testWiring(overrides: ServiceOverrides = {}): Wiring {
  const config = (overrides.exporter ?? overrides.providers ?? overrides.reports)?.config ?? loadConfig({});
  return wire({ config, log: createLogger('silent') }, overrides);
}

/** Every kind's definition, running with these services. */
export function definitionsWith(overrides: ServiceOverrides = {}): readonly JobDefinition[] {
  return testWiring(overrides).jobs.definitions;
}
