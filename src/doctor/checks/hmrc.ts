import { createHmrcClient, HmrcConfigError, hmrcOptionsFromConfig } from '../../exporter/hmrc-client.js';
import { fail, failed, ok, skip, type Check } from '../check.js';

// The HMRC token endpoint: a client-credentials request with the configured
// id and secret. No notification is sent.

const HMRC_KEYS = ['HMRC_BASE_URL', 'HMRC_TOKEN_URL', 'HMRC_CLIENT_ID', 'HMRC_CLIENT_SECRET', 'HMRC_SRN'] as const;

export const hmrcCheck: Check = {
  name: 'hmrc',
  async run({ config, signal, timeoutMs }) {
    if (HMRC_KEYS.every((k) => !config[k])) return skip('HMRC_* unset: uploads are not announced to HMRC', `set ${HMRC_KEYS.join(', ')}`);
    let options;
    try {
      options = hmrcOptionsFromConfig(config);
    } catch (err) {
      if (err instanceof HmrcConfigError) return fail(err.message, `set ${err.missing.join(', ')}`);
      throw err;
    }
    const client = createHmrcClient({ ...options, timeoutMs: Math.min(options.timeoutMs, timeoutMs) });
    try {
      await client.checkCredentials({ signal });
      return ok(`token endpoint ${options.tokenUrl} issued a token to ${options.clientId}`);
    } catch (err) {
      return failed(err, { name: 'the HMRC token endpoint', url: options.tokenUrl, setting: 'HMRC_TOKEN_URL' }, 'check HMRC_TOKEN_URL, HMRC_CLIENT_ID and HMRC_CLIENT_SECRET');
    }
  },
};
