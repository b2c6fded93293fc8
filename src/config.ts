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

  // HTTP API (herald serve).
  HTTP_HOST: z.string().default('127.0.0.1'),
  HTTP_PORT: int(8080, 0, 65535),

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
});

export type Config = z.infer<typeof schema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings mean "unset" (a blank line in an env file), not "invalid".
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  return parsed.data;
}
