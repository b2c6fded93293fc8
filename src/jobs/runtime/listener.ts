import pg from 'pg';
import type { Logger } from '../../log.js';
import { CHANNEL } from '../store/runs.js';

// LISTEN herald_jobs on a connection of its own (never a pool connection:
// it stays open for the worker's life). Announcements come from enqueueJob
// right after its caller's commit (announce.ts) and from the jobs_notify
// trigger, which Postgres delivers only when the writing transaction
// commits: "ring after commit" either way. A dropped connection loses
// messages sent while it was down, so each reconnect triggers a sweep.

export interface ListenerOptions {
  connection: string | pg.ClientConfig;
  /** A row (of `kind`, when the notification says) became claimable now (delayMs 0) or will be in delayMs. */
  onNotice(id: number, delayMs: number, kind: string | undefined): void;
  /** Listening again after a drop: notifications may have been missed. */
  onReconnect(): void;
  log: Logger;
}

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 30_000;

export class JobListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private retryMs = RECONNECT_MIN_MS;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ListenerOptions) {}

  /** Resolves once listening; if the first connect fails it keeps retrying in the background. */
  async start(): Promise<void> {
    try {
      await this.connect();
    } catch (err) {
      this.opts.log.warn({ err }, `LISTEN ${CHANNEL} failed; retrying (the sweeper covers the gap)`);
      this.scheduleReconnect();
    }
  }

  private async connect(): Promise<void> {
    const client = new pg.Client(typeof this.opts.connection === 'string' ? { connectionString: this.opts.connection } : this.opts.connection);
    client.on('notification', (msg) => {
      if (msg.channel !== CHANNEL || !msg.payload) return;
      // "id:delayMs:kind" (older rows' triggers may send "id:delayMs").
      const [id, delay, kind] = msg.payload.split(':');
      const n = Number(id);
      if (Number.isSafeInteger(n) && n > 0) this.opts.onNotice(n, Math.max(0, Number(delay) || 0), kind || undefined);
    });
    const dropped = (err?: Error) => {
      if (this.client !== client || this.stopped) return;
      this.client = undefined;
      this.opts.log.warn({ err }, `LISTEN connection lost; reconnecting`);
      client.end().catch(() => undefined);
      this.scheduleReconnect();
    };
    client.on('error', dropped);
    client.on('end', () => dropped());
    await client.connect();
    try {
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.retryMs = RECONNECT_MIN_MS;
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect().then(
        () => {
          if (this.stopped) return;
          this.opts.log.info(`LISTEN ${CHANNEL} restored; sweeping for rows announced while it was down`);
          this.opts.onReconnect();
        },
        (err: unknown) => {
          this.opts.log.warn({ err, retryInMs: this.retryMs }, `LISTEN ${CHANNEL} reconnect failed`);
          this.retryMs = Math.min(this.retryMs * 2, RECONNECT_MAX_MS);
          this.scheduleReconnect();
        },
      );
    }, this.retryMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
