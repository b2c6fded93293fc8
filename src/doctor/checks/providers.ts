import { request } from 'undici';
import type { Config } from '../../config.js';
import { fail, failed, ok, skip, type Check, type Outcome } from '../check.js';

// The e-invoicing providers: each configured base URL answers HTTP (any
// status below 500: the base URL itself need not be an API route), and a
// token is there for suppliers whose credentials_ref is 'default'. No
// document is sent.

interface Provider {
  name: string;
  urlSetting: 'PROVIDER_PAC_BASE_URL' | 'PROVIDER_INVOICING_BASE_URL';
  tokenSetting: 'PROVIDER_PAC_TOKEN' | 'PROVIDER_INVOICING_TOKEN';
  label: string;
}

const PROVIDERS: readonly Provider[] = [
  { name: 'provider-pac', urlSetting: 'PROVIDER_PAC_BASE_URL', tokenSetting: 'PROVIDER_PAC_TOKEN', label: 'the PAC' },
  { name: 'provider-invoicing', urlSetting: 'PROVIDER_INVOICING_BASE_URL', tokenSetting: 'PROVIDER_INVOICING_TOKEN', label: 'the invoicing API' },
];

async function probe(p: Provider, config: Config, signal: AbortSignal, timeoutMs: number): Promise<Outcome> {
  const url = config[p.urlSetting];
  if (!url) return { name: p.name, ...skip(`${p.urlSetting} unset: suppliers using ${p.label} cannot submit`, `set ${p.urlSetting} and ${p.tokenSetting} if a supplier uses it`) };
  const extraRefs = Object.keys(config.PROVIDER_CREDENTIALS).length;
  if (!config[p.tokenSetting] && extraRefs === 0) {
    return { name: p.name, ...fail(`${p.urlSetting} is set but ${p.tokenSetting} is not (nor PROVIDER_CREDENTIALS)`, `set ${p.tokenSetting}`) };
  }
  try {
    const res = await request(url, { method: 'HEAD', signal, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    await res.body.dump();
    if (res.statusCode >= 500) return { name: p.name, ...fail(`${url} answered HTTP ${res.statusCode}`, `${p.label} is having trouble; try again later, or check ${p.urlSetting}`) };
    return { name: p.name, ...ok(`${url} answered HTTP ${res.statusCode}; ${config[p.tokenSetting] ? `${p.tokenSetting} set` : 'tokens from PROVIDER_CREDENTIALS'}`) };
  } catch (err) {
    return { name: p.name, ...failed(err, { name: p.label, url, setting: p.urlSetting }, `check ${p.urlSetting}`) };
  }
}

export const providersCheck: Check = {
  name: 'providers',
  run: ({ config, signal, timeoutMs }) => Promise.all(PROVIDERS.map((p) => probe(p, config, signal, timeoutMs))),
};
