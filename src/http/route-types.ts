import type { FastifyPluginAsync } from 'fastify';
import type { Knex } from 'knex';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';

// What a capability's routes get from the server: its own module, so route
// files import types only and never the server that mounts them.

export interface RouteDeps {
  db: Knex;
  config: Config;
  log: Logger;
  now: () => Date;
}

export type RoutesPlugin = FastifyPluginAsync<RouteDeps>;
