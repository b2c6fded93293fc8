import net from 'node:net';
import { expect } from 'chai';
import { startTcpProxy, type TcpProxy } from '../../src/sandbox/tcp-proxy.js';

// The proxy against a real echo server: every mode is observed from a real
// client socket (what arrives, which error, when).

interface Outcome {
  data: Buffer;
  error: string | null;
  /** 'closed' when the socket closed, 'timeout' when nothing happened in time. */
  end: 'closed' | 'timeout';
}

/** Connects, sends `payload`, and reports what came back within `waitMs`. */
function exchange(port: number, payload: Buffer, waitMs = 1_000): Promise<Outcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | null = null;
    const sock = net.connect(port, '127.0.0.1', () => sock.write(payload));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ data: Buffer.concat(chunks), error, end: 'timeout' });
    }, waitMs);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), error, end: 'closed' });
    });
  });
}

describe('sandbox/tcp-proxy', () => {
  let echo: net.Server;
  let echoPort: number;
  let received: number;
  let proxy: TcpProxy | undefined;

  before(async () => {
    // Echoes whatever it gets and closes when the client half-closes or
    // after `expect` bytes, so a full exchange ends by itself.
    echo = net.createServer((s) => {
      s.on('error', () => {});
      s.on('data', (c: Buffer) => {
        received += c.length;
        s.write(c);
      });
      s.on('end', () => s.end());
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    echoPort = (echo.address() as net.AddressInfo).port;
  });
  after(async () => {
    await new Promise((r) => echo.close(r));
  });
  beforeEach(() => {
    received = 0;
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  it('forwards bytes both ways and counts them', async () => {
    proxy = await startTcpProxy({ target: { host: '127.0.0.1', port: echoPort } });
    const payload = Buffer.alloc(300_000, 3);
    const out = await exchange(proxy.port, payload, 500);
    expect(out.data.equals(payload)).to.equal(true);
    expect(proxy.stats()).to.deep.equal({ connections: 1, bytesUp: 300_000, bytesDown: 300_000 });
  });

  it('resets new connections in reset mode (ECONNRESET, nothing reaches the target)', async () => {
    proxy = await startTcpProxy({ target: { host: '127.0.0.1', port: echoPort }, mode: 'reset' });
    const out = await exchange(proxy.port, Buffer.from('hello'));
    expect(out.error).to.equal('ECONNRESET');
    expect(out.end).to.equal('closed');
    expect(received).to.equal(0);
  });

  it('swallows everything in blackhole mode: the client only ever times out', async () => {
    proxy = await startTcpProxy({ target: { host: '127.0.0.1', port: echoPort }, mode: 'blackhole' });
    const out = await exchange(proxy.port, Buffer.from('hello'), 400);
    expect(out.end).to.equal('timeout');
    expect(out.data.length).to.equal(0);
    expect(received).to.equal(0);
  });

  it('refuses connections while down and forwards again on the same port after up()', async () => {
    proxy = await startTcpProxy({ target: { host: '127.0.0.1', port: echoPort } });
    const port = proxy.port;
    await proxy.down();
    expect(proxy.isUp()).to.equal(false);
    const refused = await exchange(port, Buffer.from('x'));
    expect(refused.error).to.equal('ECONNREFUSED');
    await proxy.up();
    expect(proxy.port).to.equal(port);
    const ok = await exchange(port, Buffer.from('back'), 500);
    expect(ok.data.toString()).to.equal('back');
  });

  it('resets a connection once it has carried resetAfterBytes upstream', async () => {
    proxy = await startTcpProxy({ target: { host: '127.0.0.1', port: echoPort } });
    proxy.resetAfterBytes(1_000);
    const out = await exchange(proxy.port, Buffer.alloc(200_000, 1));
    expect(out.error).to.equal('ECONNRESET');
    expect(proxy.stats().bytesUp).to.equal(1_000);
    expect(received).to.be.at.most(1_000);
    proxy.resetAfterBytes(undefined);
    const whole = await exchange(proxy.port, Buffer.alloc(5_000, 2), 500);
    expect(whole.data.length).to.equal(5_000);
  });

  it('resets open connections on resetConnections() and keeps forwarding new ones', async () => {
    proxy = await startTcpProxy({ target: { host: '127.0.0.1', port: echoPort } });
    const pending = exchange(proxy.port, Buffer.from('first'), 2_000);
    await new Promise((r) => setTimeout(r, 100));
    proxy.resetConnections();
    const first = await pending;
    expect(first.error).to.equal('ECONNRESET');
    expect(first.data.toString()).to.equal('first'); // echoed before the reset
    const second = await exchange(proxy.port, Buffer.from('second'), 300);
    expect(second.data.toString()).to.equal('second');
  });
});
