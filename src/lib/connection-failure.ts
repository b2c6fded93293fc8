import { NETWORK_ERROR_CODES } from './network-errors.js';

// Turns "could not connect" errors from any driver (pg, ioredis/redis@3,
// the AWS SDK, undici, nodemailer) into one line naming the service, where
// it was looked for, the setting that says so, and what to do:
//   cannot reach Postgres at 127.0.0.1:5433 (DATABASE_URL): connection refused — start it or fix DATABASE_URL
// The error itself says little (ECONNREFUSED 127.0.0.1:5433, or an
// AggregateError of one attempt per address); the service is found by
// matching the failed address against the endpoints the process was given.
// No dependencies: `herald --help` loads this.

export interface Endpoint {
  /** What the user calls it: Postgres, Redis, S3, HMRC token endpoint... */
  name: string;
  url: string;
  /** The setting that holds url. */
  setting: string;
}

interface ErrorShape {
  code?: unknown;
  errno?: unknown;
  address?: unknown;
  port?: unknown;
  hostname?: unknown;
  host?: unknown;
  message?: unknown;
  cause?: unknown;
  errors?: unknown;
}

// Socket and DNS codes, as the user would say them.
const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'timed out',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed (DNS)',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENETDOWN: 'network down',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  UND_ERR_SOCKET: 'connection closed',
  // nodemailer's own codes; the socket's code is only in its message.
  ESOCKET: 'connection failed',
  ECONNECTION: 'connection failed',
};
const GENERIC_CODES = new Set(['ESOCKET', 'ECONNECTION']);

// Postgres SQLSTATEs a login can end with (class 28: authorization; 3D000:
// no such database; 53300: too many connections).
const PG_LOGIN_CODES = new Set(['28P01', '28000', '3D000', '53300']);

/** Every error in err's cause chain and aggregate members, err first. */
function* chain(err: unknown, depth = 0): Generator<ErrorShape> {
  if (typeof err !== 'object' || err === null || depth > 8) return;
  const e = err as ErrorShape;
  yield e;
  if (Array.isArray(e.errors)) for (const inner of e.errors) yield* chain(inner, depth + 1);
  if (e.cause) yield* chain(e.cause, depth + 1);
}

function hostPort(url: string): { host: string; port: string; display: string } | null {
  try {
    const u = new URL(url);
    const defaults: Record<string, string> = { 'postgres:': '5432', 'postgresql:': '5432', 'redis:': '6379', 'rediss:': '6379', 'http:': '80', 'https:': '443', 'smtp:': '587', 'smtps:': '465' };
    const port = u.port || defaults[u.protocol] || '';
    const host = u.hostname.replace(/^\[|\]$/g, '');
    return { host, port, display: port ? `${u.hostname}:${port}` : u.hostname };
  } catch {
    return null;
  }
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '::ffff:127.0.0.1']);

function sameHost(a: string, b: string): boolean {
  return a === b || (LOOPBACK.has(a) && LOOPBACK.has(b));
}

/** The endpoint a network error was about, when the error says where it went. */
function endpointOf(e: ErrorShape, endpoints: readonly Endpoint[]): Endpoint | undefined {
  const address = typeof e.address === 'string' ? e.address : typeof e.hostname === 'string' ? e.hostname : typeof e.host === 'string' ? e.host : undefined;
  const port = e.port !== undefined ? String(e.port) : undefined;
  const matches = endpoints.filter((ep) => {
    const hp = hostPort(ep.url);
    if (!hp) return false;
    if (port && hp.port !== port) return false;
    if (address && !sameHost(hp.host, address)) return false;
    return Boolean(port || address);
  });
  return matches[0];
}

function fixFor(reason: string, setting: string): string {
  if (reason === 'host not found' || reason.startsWith('host name lookup')) return `fix the host in ${setting}`;
  return `start it or fix ${setting}`;
}

/** A failure to reach (or log in to) a service, in parts: doctor prints them as columns. */
export interface ConnectionFailure {
  /** The endpoint, when the error could be tied to one. */
  endpoint: Endpoint | undefined;
  /** host:port as the user wrote it (or as the error says). */
  where: string | undefined;
  /** What went wrong, briefly: "connection refused", 'database "x" does not exist'. */
  reason: string;
  /** What to do about it. */
  fix: string;
  /** unreachable: no connection; login: credentials refused; database: connected, but no such database. */
  kind: 'unreachable' | 'login' | 'database';
}

/**
 * What failed, for an error that is a failure to reach or log in to a
 * service; null otherwise. With a single endpoint the failure is taken to be
 * about it (the caller knows what it was connecting to); with several, the
 * failed address picks.
 */
export function connectionFailure(err: unknown, endpoints: readonly Endpoint[]): ConnectionFailure | null {
  const all = [...chain(err)];
  const pg = all.find((e) => typeof e.code === 'string' && PG_LOGIN_CODES.has(e.code));
  if (pg) {
    const endpoint = endpoints.find((x) => x.name === 'Postgres') ?? (endpoints.length === 1 ? endpoints[0] : undefined);
    const setting = endpoint?.setting ?? 'DATABASE_URL';
    const fix =
      pg.code === '3D000' ? `create it (createdb) or fix the database name in ${setting}`
        : pg.code === '53300' ? 'raise max_connections or run fewer workers (herald doctor --workers N checks it)'
          : `fix the user or password in ${setting}`;
    const where = endpoint ? (hostPort(endpoint.url)?.display ?? endpoint.url) : undefined;
    const kind = pg.code === '3D000' ? 'database' : pg.code === '53300' ? 'unreachable' : 'login';
    return { endpoint, where, reason: String(pg.message ?? pg.code), fix, kind };
  }
  const net = all.find((e) => typeof e.code === 'string' && (NETWORK_ERROR_CODES.has(e.code) || e.code in REASONS));
  if (!net) return null;
  const inMessage = GENERIC_CODES.has(net.code as string) ? /\b(E[A-Z_]{3,})\b/.exec(String(net.message ?? ''))?.[1] : undefined;
  const reason = REASONS[inMessage ?? (net.code as string)] ?? REASONS[net.code as string] ?? String(net.code);
  // Aggregates (one attempt per address of a name) carry the address on their members.
  const located = all.filter((e) => e.code === net.code);
  const endpoint = endpoints.length === 1 ? endpoints[0] : located.map((e) => endpointOf(e, endpoints)).find(Boolean);
  if (endpoint) return { endpoint, where: hostPort(endpoint.url)?.display ?? endpoint.url, reason, fix: fixFor(reason, endpoint.setting), kind: 'unreachable' };
  const where = located
    .map((e) => (typeof e.address === 'string' ? `${e.address}${e.port !== undefined ? `:${String(e.port)}` : ''}` : typeof e.hostname === 'string' ? e.hostname : ''))
    .find(Boolean);
  return { endpoint: undefined, where, reason, fix: 'is the service running, and is its setting right? (herald doctor checks them all)', kind: 'unreachable' };
}

/** The failure as one line, e.g. "cannot reach Postgres at 127.0.0.1:5433 (DATABASE_URL): connection refused — start it or fix DATABASE_URL". */
export function describeConnectionFailure(err: unknown, endpoints: readonly Endpoint[]): string | null {
  const f = connectionFailure(err, endpoints);
  if (!f) return null;
  const ep = f.endpoint;
  if (f.kind !== 'unreachable') return `${ep?.name ?? 'Postgres'}${ep ? ` at ${f.where} (${ep.setting})` : ''}${f.kind === 'login' ? ' refused the login' : ''}: ${f.reason} — ${f.fix}`;
  if (ep) return `cannot reach ${ep.name} at ${f.where} (${ep.setting}): ${f.reason} — ${f.fix}`;
  return `cannot connect${f.where ? ` to ${f.where}` : ''}: ${f.reason} — ${f.fix}`;
}

/** The service URLs a configuration names, for describeConnectionFailure. */
export function configuredEndpoints(config: Partial<Record<string, unknown>>): Endpoint[] {
  const out: Endpoint[] = [];
  const add = (name: string, setting: string) => {
    const url = config[setting];
    if (typeof url === 'string' && url) out.push({ name, url, setting });
  };
  add('Postgres', 'DATABASE_URL');
  add('Redis', 'REDIS_URL');
  add('S3', 'S3_ENDPOINT');
  add('the HMRC token endpoint', 'HMRC_TOKEN_URL');
  add('the HMRC API', 'HMRC_BASE_URL');
  add('the PAC', 'PROVIDER_PAC_BASE_URL');
  add('the invoicing API', 'PROVIDER_INVOICING_BASE_URL');
  add('the SMTP server', 'SMTP_URL');
  return out;
}
