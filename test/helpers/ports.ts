import fs from 'node:fs';
import net from 'node:net';

/**
 * A port nothing listens on. Chosen below the kernel's ephemeral range
 * (ip_local_port_range), where no `listen(0)` of this suite or of another
 * suite beside it will land between this check and the test's connect: a
 * port merely freed by listen(0) + close was taken by a neighbour's test
 * server once, and "connection refused" became "connection terminated".
 */
export async function closedPort(): Promise<number> {
  let low = 32768;
  try {
    low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    // not Linux: the default range's bottom
  }
  const floor = Math.min(20000, low - 1000);
  for (let i = 0; i < 50; i++) {
    const port = floor + Math.floor(Math.random() * (low - floor));
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port between ${floor} and ${low}`);
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A TCP server that accepts connections and never says a word: a hung service. */
export async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
