import pg from 'pg';

// What every benchmark script shares: where the scratch databases live,
// numeric --options, and the admin connection that creates and drops them.

export const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** `--name N` from the command line (a positive number; whole unless fractions are allowed), or the default. */
export function arg(name: string, dflt: number, opts: { fractions?: boolean } = {}): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const n = Number(process.argv[i + 1]);
  const ok = opts.fractions ? Number.isFinite(n) : Number.isInteger(n);
  if (!ok || n <= 0) throw new Error(`--${name} must be a positive ${opts.fractions ? '' : 'whole '}number`);
  return n;
}

/** The GenerateInvoiceRequest body the invoice benchmarks send: two lines, one with a discount. */
export function benchInvoiceBody(supplierId: number, clientId: number) {
  return {
    supplierId,
    clientId,
    items: [
      { description: 'Line one', quantity: '2', unitPrice: '10.25' },
      { description: 'Line two', quantity: '1.5', unitPrice: '99.99', discount: '5.00' },
    ],
  };
}

/** The URL of database `name` on the admin server. */
export function dbUrl(name: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

/** One statement on the admin connection (CREATE / DROP DATABASE). */
export async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** Wall time and peak RSS (sampled every 20 ms, after a GC when --expose-gc allows) while `fn` runs. */
export async function measure<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number; rssBefore: number; rssPeak: number }> {
  global.gc?.();
  const rss = () => process.memoryUsage.rss();
  const rssBefore = rss();
  let rssPeak = rssBefore;
  const timer = setInterval(() => (rssPeak = Math.max(rssPeak, rss())), 20);
  const started = process.hrtime.bigint();
  try {
    const value = await fn();
    rssPeak = Math.max(rssPeak, rss());
    return { value, seconds: Number(process.hrtime.bigint() - started) / 1e9, rssBefore, rssPeak };
  } finally {
    clearInterval(timer);
  }
}
