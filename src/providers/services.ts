import type { Config } from '../config.js';
import { AuthError } from '../jobs/contract/errors.js';
import { createS3Storage, s3OptionsFromConfig, type S3Storage } from '../storage/s3.js';
import { NEXT_STEPS } from './classify.js';
import { createInvoicingClient } from './invoicing-client.js';
import { createPacClient } from './pac-client.js';
import type { ProviderClient } from './provider.js';
import type { ProviderKind } from './store.js';

// What provider jobs, webhooks and commands need besides the database. The
// clients and S3 are made on first use, so a worker whose suppliers use one
// provider needs no settings for the other, and a missing setting fails the
// job that needs it, naming the setting.

export interface ProviderServices {
  config: Config;
  storage(): S3Storage;
  client(kind: ProviderKind): ProviderClient;
  /** The token for a supplier's credentials_ref; AuthError naming the setting when missing. */
  token(kind: ProviderKind, credentialsRef: string): string;
  close(): void;
}

export class ProviderConfigError extends AuthError {
  constructor(readonly missing: string) {
    super(`e-invoicing provider is not configured: set ${missing}`, { nextStep: `set ${missing}, then herald pac resubmit INVOICE` });
  }
}

export function createProviderServices(config: Config, overrides: { storage?: S3Storage; clients?: Partial<Record<ProviderKind, ProviderClient>> } = {}): ProviderServices {
  let storage = overrides.storage;
  const clients = new Map<ProviderKind, ProviderClient>(Object.entries(overrides.clients ?? {}) as [ProviderKind, ProviderClient][]);
  return {
    config,
    storage() {
      storage ??= createS3Storage(s3OptionsFromConfig(config));
      return storage;
    },
    client(kind) {
      let c = clients.get(kind);
      if (!c) {
        const timeoutMs = config.PROVIDER_API_TIMEOUT_MS;
        if (kind === 'pac') {
          if (!config.PROVIDER_PAC_BASE_URL) throw new ProviderConfigError('PROVIDER_PAC_BASE_URL');
          c = createPacClient({ baseUrl: config.PROVIDER_PAC_BASE_URL, timeoutMs });
        } else {
          if (!config.PROVIDER_INVOICING_BASE_URL) throw new ProviderConfigError('PROVIDER_INVOICING_BASE_URL');
          c = createInvoicingClient({ baseUrl: config.PROVIDER_INVOICING_BASE_URL, timeoutMs });
        }
        clients.set(kind, c);
      }
      return c;
    },
    token(kind, ref) {
      if (ref === 'default') {
        const key = kind === 'pac' ? 'PROVIDER_PAC_TOKEN' : 'PROVIDER_INVOICING_TOKEN';
        const t = config[key];
        if (!t) throw new ProviderConfigError(key);
        return t;
      }
      const t = config.PROVIDER_CREDENTIALS[ref];
      if (!t) throw new ProviderConfigError(`PROVIDER_CREDENTIALS["${ref}"]`);
      return t;
    },
    close() {
      if (storage && !overrides.storage) storage.close();
    },
  };
}

export { NEXT_STEPS };
