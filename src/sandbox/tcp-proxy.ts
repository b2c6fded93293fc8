import net from 'node:net';

// A TCP proxy for wire faults a server cannot fake from inside: the target
// is unreachable (down), connections reset mid-request, or packets vanish
// (black hole: connect succeeds, nothing ever comes back). Tests point a
// client at the proxy and flip its mode; pg-boss's halfOpenProxy is the model.

export type ProxyMode =
  /** Forward bytes both ways (optionally resetting after resetAfterBytes upstream). */
  | 'forward'
  /** Accept, then reset every new connection at once. */
  | 'reset'
  /** Accept and swallow everything; never answer. */
  | 'blackhole';

export interface TcpProxyOptions {
  target: { host: string; port: number };
  /** 0 picks a free port; down()/up() keep the port. */
  port?: number;
  host?: string;
  mode?: ProxyMode;
}

export interface ProxyStats {
  /** Connections accepted since start (or the last resetStats). */
  connections: number;
  /** Bytes sent on from client to target. */
  bytesUp: number;
  /** Bytes sent back from target to client. */
  bytesDown: number;
}

export interface TcpProxy {
  readonly host: string;
  readonly port: number;
  /** http://host:port, for HTTP clients. */
  readonly url: string;
  mode(): ProxyMode;
  setMode(mode: ProxyMode): void;
  /**
   * In forward mode, reset each new connection once it has carried this many
   * bytes upstream (undefined: never): a reset in the middle of an upload.
   */
  resetAfterBytes(bytes: number | undefined): void;
  /** Reset (RST) every open connection; new ones follow the mode. */
  resetConnections(): void;
  /** Stop listening and drop every connection: clients get ECONNREFUSED. */
  down(): Promise<void>;
  /** Listen again on the same port. */
  up(): Promise<void>;
  isUp(): boolean;
  stats(): ProxyStats;
  close(): Promise<void>;
}

export async function startTcpProxy(opts: TcpProxyOptions): Promise<TcpProxy> {
  const host = opts.host ?? '127.0.0.1';
  let mode: ProxyMode = opts.mode ?? 'forward';
  let cutAfter: number | undefined;
  let listening = false;
  const stats: ProxyStats = { connections: 0, bytesUp: 0, bytesDown: 0 };
  const open = new Set<net.Socket>();

  const track = (s: net.Socket) => {
    open.add(s);
    s.once('close', () => open.delete(s));
    // A reset on one side is expected here; it must not crash the process.
    s.on('error', () => s.destroy());
  };

  const server = net.createServer((client) => {
    stats.connections += 1;
    track(client);
    if (mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    if (mode === 'blackhole') {
      client.resume(); // read and discard, so the sender never blocks
      return;
    }
    const upstream = net.connect(opts.target.port, opts.target.host);
    track(upstream);
    let carried = 0;
    const limit = cutAfter;
    client.on('data', (chunk: Buffer) => {
      if (limit !== undefined && carried + chunk.length > limit) {
        const part = chunk.subarray(0, Math.max(0, limit - carried));
        if (part.length) upstream.write(part);
        stats.bytesUp += part.length;
        client.resetAndDestroy();
        upstream.resetAndDestroy();
        return;
      }
      carried += chunk.length;
      stats.bytesUp += chunk.length;
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.on('data', (chunk: Buffer) => {
      stats.bytesDown += chunk.length;
      if (!client.write(chunk)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
    // Pass half-closes and resets through, so each side sees what the other did.
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('close', (hadError) => (hadError ? upstream.resetAndDestroy() : upstream.destroy()));
    upstream.on('close', (hadError) => (hadError ? client.resetAndDestroy() : client.destroy()));
  });
  server.on('error', () => {}); // listen errors surface through listen()

  let port = opts.port ?? 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        port = (server.address() as net.AddressInfo).port;
        listening = true;
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      listening = false;
      for (const s of open) s.destroy();
      open.clear();
      if (!server.listening) return resolve();
      server.close(() => resolve());
    });

  await listen();

  return {
    host,
    get port() {
      return port;
    },
    get url() {
      return `http://${host}:${port}`;
    },
    mode: () => mode,
    setMode(m) {
      mode = m;
    },
    resetAfterBytes(bytes) {
      cutAfter = bytes;
    },
    resetConnections() {
      for (const s of open) s.resetAndDestroy();
      open.clear();
    },
    down: stop,
    async up() {
      if (!listening) await listen();
    },
    isUp: () => listening,
    stats: () => ({ ...stats }),
    close: stop,
  };
}
