import { isIP } from 'node:net';
import { z } from 'zod';

// The one place that reads process.env. Every setting is parsed once at
// start-up; all bad keys are reported together, one line each, so an operator
// fixes a deployment in one pass instead of one restart per typo.

const bool = (dflt: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
    .default(dflt ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (dflt: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce
    .number({ message: 'must be a whole number' })
    .int({ message: 'must be a whole number' })
    .min(min, { message: `must be at least ${min}` })
    .max(max, { message: `must be at most ${max}` })
    .default(dflt);
const url = z.url({ message: 'must be a URL' });
// proxy-addr's names for address ranges (Fastify's trustProxy).
const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);
const isAddressOrRange = (e: string) => {
  const [address = '', bits, more] = e.split('/');
  const family = isIP(address);
  return family !== 0 && more === undefined && (bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128)));
};

const schema = z.object({
  // Postgres connection string. Unset: an embedded PGlite database in
  // HERALD_DATA_DIR (single process only; for the demo and trying things out).
  DATABASE_URL: url.optional(),
  // Where the embedded database keeps its files (default .herald/pgdata).
  HERALD_DATA_DIR: z.string().min(1).default('.herald'),
  // Redis for the bee-queue doorbell. Unset: jobs run inline in this process.
  REDIS_URL: url.optional(),
  // Key prefix for every Redis key Herald writes (default herald), so several
  // deployments or test files can share one Redis.
  REDIS_PREFIX: z.string().min(1).default('herald'),
  // pino level (default info).
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  // HMRC's limit for one envelope file is 40 MB; below 4096 bytes not even an
  // empty envelope with one small transaction fits, so such a limit is a typo.
  EXPORTER_MAX_ENVELOPE_SIZE: int(40_000_000, 4096),
  // TARIC transaction ids continue from this number when no envelope exists
  // yet (default 1); set it to follow on from a previous system's ids.
  EXPORTER_FIRST_TRANSACTION_ID: int(1, 1, 99_999_999),
  // One export run (render + validate + store every ready workbasket) may
  // take this long (default 10 min); 3x without a heartbeat counts as stuck.
  EXPORTER_EXPORT_TIMEOUT_MS: int(600_000, 100),
  // XSD validation of envelopes at export: xmllint (libxml2's streaming
  // validator in its own process; needs libxml2-utils), wasm (libxml2-wasm in
  // a worker thread; no system package), or auto (default: xmllint where it
  // runs, else wasm).
  EXPORTER_XSD_VALIDATOR: z.enum(['auto', 'xmllint', 'wasm']).default('auto'),
  // S3 key prefix for envelope files (default tohmrc/staging/, as HMRC expects).
  EXPORTER_S3_PREFIX: z.string().default('tohmrc/staging/'),

  // S3 (or S3-compatible) storage. No defaults: production must name them.
  S3_ENDPOINT: url.optional(),
  S3_REGION: z.string().min(1).default('eu-west-2'),
  S3_BUCKET: z.string().min(3).optional(),
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  // Path-style addressing for S3-compatible servers (default false for AWS).
  S3_FORCE_PATH_STYLE: bool(false),
  // Local S3-compatible servers do not speak the SDK's default flexible
  // checksums (stored chunk framing was seen); only set for such servers.
  S3_CHECKSUM_WHEN_REQUIRED: bool(false),
  // Deadline for one S3 call, the whole body included (default 120 s: a
  // 40 MB envelope needs at least 0.35 MB/s). A connection that sends nothing
  // for min(30 s, this) is given up earlier.
  S3_TIMEOUT_MS: int(120_000, 100),

  // HMRC Secure Data Exchange (SDES) notification API.
  HMRC_BASE_URL: url.optional(),
  HMRC_TOKEN_URL: url.optional(),
  HMRC_CLIENT_ID: z.string().min(1).optional(),
  HMRC_CLIENT_SECRET: z.string().min(1).optional(),
  // Service reference number HMRC issued for the transfer route.
  HMRC_SRN: z.string().min(1).optional(),
  // Kill switch: false stops notifications (uploads still happen; jobs wait).
  HMRC_NOTIFICATIONS_ENABLED: bool(true),
  // Per-call timeout (default 10 s); the sweeper treats 3x this as stuck.
  HMRC_TIMEOUT_MS: int(10_000, 100),

  // Jobs each worker runs at once (default 10).
  JOBS_CONCURRENCY: int(10, 1, 500),
  // How often each worker's sweeper looks for lost or stuck rows (default 15 s).
  JOBS_SWEEP_INTERVAL_MS: int(15_000, 100),
  // How often each worker (and inline run) refreshes its row in job_workers (default 2 s).
  JOBS_WORKER_HEARTBEAT_MS: int(2000, 100, 60_000),
  // A worker silent this long is dead: any other worker puts its running jobs
  // back to pending at once, without using an attempt (default 10 s; at least
  // twice JOBS_WORKER_HEARTBEAT_MS).
  JOBS_WORKER_LOST_AFTER_MS: int(10_000, 200, 3_600_000),

  // HTTP API (herald serve).
  HTTP_HOST: z.string().default('127.0.0.1'),
  HTTP_PORT: int(8080, 0, 65535),
  // Which proxies may tell Herald the client's address and protocol
  // (X-Forwarded-For / X-Forwarded-Proto): false (default: none; the socket's
  // peer is the client), true (any: only when nothing else can reach the
  // port), a hop count, or a comma-separated list of addresses, CIDR ranges
  // and loopback / linklocal / uniquelocal. Decides the /admin login
  // throttle's client address and whether cookies get Secure.
  HTTP_TRUST_PROXY: z
    .string()
    .default('false')
    .transform((s, ctx): boolean | number | string[] => {
      if (s === 'false') return false;
      if (s === 'true') return true;
      if (/^\d{1,2}$/.test(s)) return Number(s);
      const entries = s.split(',').map((e) => e.trim());
      const bad = entries.find((e) => !PROXY_NAMES.has(e) && !isAddressOrRange(e));
      if (bad === undefined) return entries;
      ctx.addIssue({ code: 'custom', message: `must be false, true, a hop count or addresses / CIDR ranges / loopback, linklocal, uniquelocal separated by commas; "${bad}" is none of these` });
      return z.NEVER;
    }),

  // Operations (src/admin, src/mail, src/http/metrics.ts; issue 7).
  // Signs the /admin CSRF cookie; at least 32 characters. Unset: a random
  // secret per process (a form opened before `herald serve` restarted must
  // be reloaded; set it when running several servers). Sessions themselves
  // are rows in Postgres (admin_sessions) and need no secret.
  ADMIN_SESSION_SECRET: z.string().min(32, { message: 'must be at least 32 characters' }).optional(),
  // How long an /admin login lasts (default 8 h: one working day).
  ADMIN_SESSION_TTL_MS: int(8 * 3_600_000, 60_000),
  // Failed /admin logins, counted per user name and per client address:
  // after this many in a row (default 5) each further attempt must wait,
  // ADMIN_LOGIN_DELAY_MS (default 1 s) doubling with every failure; at
  // ADMIN_LOGIN_LOCKOUT_FAILURES (default 10) the name or address is locked
  // for ADMIN_LOGIN_LOCKOUT_MS (default 15 min). A count is forgotten after
  // ADMIN_LOGIN_FORGET_MS without a failure (default 1 h) or on a successful
  // login. Defaults: 10 guesses in the first 16 minutes, then one per 15 min
  // until an hour passes without a failure; an operator who mistypes a few
  // times never waits.
  ADMIN_LOGIN_FREE_FAILURES: int(5, 1, 1000),
  ADMIN_LOGIN_DELAY_MS: int(1000, 0, 3_600_000),
  ADMIN_LOGIN_LOCKOUT_FAILURES: int(10, 1, 1000),
  ADMIN_LOGIN_LOCKOUT_MS: int(900_000, 1000),
  ADMIN_LOGIN_FORGET_MS: int(3_600_000, 1000),
  // Password hashes (scrypt, 32 MB and ~100 ms each) one server computes at
  // once (default 2: half the libuv pool, one core each on a 2-core host);
  // up to 10x this many wait, more get 503 at once.
  ADMIN_LOGIN_HASH_CONCURRENCY: int(2, 1, 64),
  // The oldest due pending job turns red on /admin past this age (default
  // 15 min: every retry schedule's first steps are shorter, so a job waiting
  // longer means no worker is taking work).
  ADMIN_PENDING_AGE_WARN_MS: int(900_000, 1000),
  // Bearer token GET /metrics requires (Authorization: Bearer <token>), at
  // least 16 characters. Unset: /metrics is public (keep it off the internet).
  METRICS_TOKEN: z.string().min(16, { message: 'must be at least 16 characters' }).optional(),
  // The database figures of /metrics (job counts, ages, attempts) are read at
  // most this often whatever the scrape rate (default 5 s; Prometheus scrapes
  // every 15-60 s); scrapes in between get the previous figures.
  METRICS_CACHE_MS: int(5_000, 0, 3_600_000),
  // SMTP server for failure mails, e.g. smtp://user:pass@mail.example:587.
  // No default: unset means no mails (logged once per failure instead).
  SMTP_URL: url.optional(),
  // Who is told when a job fails permanently (comma-separated; no default).
  MAIL_FAILURES_TO: z.string().min(3).optional(),
  // Sender of failure mails (default herald@localhost).
  MAIL_FROM: z.string().min(3).default('herald@localhost'),
  // Off switch for failure mails (default on when SMTP_URL and MAIL_FAILURES_TO are set).
  MAIL_FAILURES_ENABLED: bool(true),

  // Reports (src/reports). A report still RUNNING this long after it was
  // asked for becomes FAIL "timed out" (default 15 min each: a year of
  // uploads or invoices is a few hundred thousand rows, written in well
  // under a minute; past 15 min something is stuck, and the user must learn it).
  REPORTS_UPLOADS_TIMEOUT_MS: int(900_000, 1000),
  REPORTS_INVOICES_TIMEOUT_MS: int(900_000, 1000),
  // A repeat request (same creator, type and params) within this long of a
  // SUCCESS gets that report back instead of a new one (default 5 min: a
  // double click or a retrying client, not a stale copy of moving data; 0 = never).
  REPORTS_REUSE_WINDOW_MS: int(300_000, 0),
  // How often the reports-expire job fails RUNNING reports past their
  // deadline whose own timeout job was lost (default 5 min: a backstop, each
  // run is one indexed UPDATE plus a job_attempts row).
  REPORTS_EXPIRE_INTERVAL_MS: int(300_000, 1000),
  // S3 key prefix for report files (default reports/).
  REPORTS_S3_PREFIX: z.string().default('reports/'),

  // E-invoicing providers (src/providers). Base URLs and tokens have no
  // production defaults: a supplier whose provider is not configured fails
  // its submission with the missing setting's name.
  PROVIDER_PAC_BASE_URL: url.optional(),
  // Bearer token for suppliers whose credentials_ref is 'default'.
  PROVIDER_PAC_TOKEN: z.string().min(1).optional(),
  PROVIDER_INVOICING_BASE_URL: url.optional(),
  PROVIDER_INVOICING_TOKEN: z.string().min(1).optional(),
  // Tokens for other credentials_ref names, as JSON {"ref": "token"} (default
  // none): one Herald can hold several accounts at one provider.
  PROVIDER_CREDENTIALS: z
    .string()
    .default('{}')
    .transform((s, ctx) => {
      try {
        const v: unknown = JSON.parse(s);
        if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((t) => typeof t === 'string')) return v as Record<string, string>;
      } catch {
        // reported below
      }
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object of credentials_ref -> token strings' });
      return z.NEVER;
    }),
  // Shared secret the PAC sends in X-Webhook-Secret. Unset: webhooks answer
  // 401 and the poller alone follows legal status.
  PROVIDER_WEBHOOK_SECRET: z.string().min(16, { message: 'must be at least 16 characters' }).optional(),
  // Origins (scheme://host[:port], comma-separated) the authority's PDF may be
  // downloaded from besides the PAC base URL's own (unset: none). A PDF URL
  // (from a webhook or a status answer) or a redirect elsewhere is refused
  // and logged; the document stays in its polling round.
  PROVIDER_PDF_ORIGINS: z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (s === undefined) return undefined;
      const list = s.split(',').map((x) => x.trim()).filter(Boolean);
      for (const item of list) {
        let u: URL | undefined;
        try {
          u = new URL(item);
        } catch {
          // reported below
        }
        if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:') || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash || u.username) {
          ctx.addIssue({ code: 'custom', message: `"${item}" is not an origin (scheme://host[:port], nothing after it)` });
          return z.NEVER;
        }
      }
      return list;
    }),
  // Largest PDF accepted (default 20 MB; invoices' PDFs are tens of KB): the
  // download is cut as soon as it passes this, nothing beyond is read.
  PROVIDER_PDF_MAX_BYTES: int(20 * 1024 * 1024, 1024),
  // Per provider HTTP call, body included (default 10 s); a submission makes
  // at most two (look-up + POST), and 3x that without a heartbeat is stuck.
  PROVIDER_API_TIMEOUT_MS: int(10_000, 100),
  // Submission retries: min(base * 2^(n-1), cap) with jitter (defaults 5 min
  // and 2 h: providers' outages last minutes to hours, and a tax authority
  // accepts an invoice days after issue), at most this many attempts (default
  // 10: 2 h cap reached at the 6th, about 11 h of trying in all).
  PROVIDER_BACKOFF_BASE_MS: int(300_000, 10),
  PROVIDER_BACKOFF_CAP_MS: int(7_200_000, 10),
  PROVIDER_MAX_RETRIES: int(10, 1, 100),
  // Completed provider jobs deleted per statement by the daily cleanup
  // (default 50: short statements, no long lock on the jobs table).
  PROVIDER_BATCH_SIZE: int(50, 1, 10_000),
  // Completed provider jobs are kept this many days (default 30) for the admin page.
  PROVIDER_JOB_RETENTION_DAYS: int(30, 1),
  // PAC status polling after a submission: this many attempts (default 60)
  // this far apart (default 5 s): five minutes, longer than a DGI round trip.
  PROVIDER_POLL_ATTEMPTS: int(60, 1, 10_000),
  PROVIDER_POLL_INTERVAL_MS: int(5_000, 10),
  // Due polls a worker claims and sends at once (default 100): one query reads
  // their documents, one statement records them, their GETs run in parallel.
  PROVIDER_POLL_BATCH_SIZE: int(100, 1, 1_000),
  // S3 key prefix for authority PDFs (default providers/pdf/).
  PROVIDER_S3_PREFIX: z.string().default('providers/pdf/'),
});

export type Config = z.infer<typeof schema>;

/** Every setting Herald reads, in schema order (.env.example and the deployment kit are checked against it). */
export const CONFIG_KEYS = Object.keys(schema.shape) as (keyof Config)[];

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses env (default: the process's), with overrides on top (the demo points Herald at its sandboxes). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Record<string, string> = {}): Config {
  // Empty strings mean "unset" (a blank line in an env file), not "invalid".
  const cleaned = Object.fromEntries(Object.entries({ ...env, ...overrides }).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const c = parsed.data;
  // One late heartbeat (a GC pause, a busy pool) must never make a live worker look dead.
  if (c.JOBS_WORKER_LOST_AFTER_MS < 2 * c.JOBS_WORKER_HEARTBEAT_MS) {
    throw new ConfigError([`JOBS_WORKER_LOST_AFTER_MS: must be at least twice JOBS_WORKER_HEARTBEAT_MS (${2 * c.JOBS_WORKER_HEARTBEAT_MS})`]);
  }
  return c;
}
