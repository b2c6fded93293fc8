import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';

// Faults the sandboxes inject on the wire. A fault is queued for the next
// `times` requests it matches (default 1), then it is used up; tests and the
// demo queue them by function call or admin endpoint and the servers consume
// them in order, so a scenario ("500, then 429, then OK") reads as a list.

export const faultActionSchema = z.discriminatedUnion('type', [
  // Wait this long, then answer normally.
  z.strictObject({ type: z.literal('latency'), ms: z.number().int().min(0).max(600_000) }),
  // Answer with this status instead of handling the request.
  z.strictObject({
    type: z.literal('status'),
    status: z.number().int().min(400).max(599),
    body: z.unknown().optional(),
    // Sent as the Retry-After header (seconds or an HTTP-date), mostly with 429.
    retryAfter: z.string().min(1).optional(),
    // S3 error code for the S3 server (SlowDown, InternalError, ...).
    code: z.string().min(1).optional(),
  }),
  // Close the connection without an answer (FIN): "socket hang up".
  z.strictObject({ type: z.literal('drop') }),
  // Abort the connection with a TCP RST: "ECONNRESET".
  z.strictObject({ type: z.literal('reset') }),
  // Never answer: only a client timeout ends the request.
  z.strictObject({ type: z.literal('hang') }),
]);

export type FaultAction = z.infer<typeof faultActionSchema>;

export type Fault<Match> = FaultAction & { match?: Match; times?: number };

/**
 * Queued items, each good for its `times` uses (default 1): `take` returns
 * the first one that matches and uses it up by one. The wire faults below,
 * and the PAC stand-in's webhook and PDF faults, are such queues.
 */
export class CountedQueue<T extends { times?: number | undefined }, Got> {
  private queue: Array<{ item: T; left: number }> = [];

  constructor(private readonly matches: (item: T, got: Got) => boolean) {}

  push(item: T): void {
    this.queue.push({ item, left: item.times ?? 1 });
  }

  /** The first queued item matching `got`, used up by one. */
  take(got: Got): T | undefined {
    const i = this.queue.findIndex((q) => this.matches(q.item, got));
    if (i < 0) return undefined;
    const q = this.queue[i]!;
    q.left -= 1;
    if (q.left <= 0) this.queue.splice(i, 1);
    return q.item;
  }

  /** What is still queued, each with the uses it has left. */
  pending(): T[] {
    return this.queue.map((q) => ({ ...q.item, times: q.left }));
  }

  clear(): void {
    this.queue = [];
  }
}

/** Wire faults for requests of kind Match: `matches(want, got)` says whether a fault's `match` applies. */
export class FaultQueue<Match> extends CountedQueue<Fault<Match>, Match> {
  constructor(matches: (want: Match | undefined, got: Match) => boolean) {
    super((fault, got) => matches(fault.match, got));
  }
}

/**
 * Tracks a server's sockets so that close() also ends hung requests and
 * keep-alive connections instead of waiting for clients to give up.
 */
export class SocketSet {
  private readonly sockets = new Set<Socket>();

  add(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }
}

/** Connection-level faults shared by the HTTP sandboxes. */
export function breakConnection(socket: Socket, type: 'drop' | 'reset'): void {
  if (type === 'reset') socket.resetAndDestroy();
  else socket.destroy();
}

/** A delay that ends early (without error) when the server closes. */
export async function delay(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch {
    // closed while waiting: the caller finds the socket gone
  }
}

/**
 * Plays a fault on a fastify request: the HTTP stand-ins (HMRC, PAC,
 * invoicing API) share it, each giving the error body its API would send.
 * Returns true when the fault answered or killed the request.
 */
export async function playHttpFault(
  fault: FaultAction,
  rec: { fault: string | null; status: number | null },
  req: FastifyRequest,
  reply: FastifyReply,
  opts: { closing: AbortSignal; body(status: number): unknown },
): Promise<boolean> {
  rec.fault = fault.type;
  switch (fault.type) {
    case 'latency':
      await delay(fault.ms, opts.closing);
      return opts.closing.aborted;
    case 'drop':
    case 'reset':
      reply.hijack();
      breakConnection(req.raw.socket, fault.type);
      return true;
    case 'hang':
      reply.hijack(); // ended by the server's close() (forceCloseConnections)
      return true;
    case 'status': {
      rec.status = fault.status;
      if (fault.retryAfter) reply.header('retry-after', fault.retryAfter);
      const body = fault.body ?? opts.body(fault.status);
      if (typeof body === 'string') await reply.code(fault.status).type('text/plain').send(body);
      else await reply.code(fault.status).send(body);
      return true;
    }
  }
}
