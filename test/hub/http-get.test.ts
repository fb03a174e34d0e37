/**
 * The HTTP/1.1 GET the Hub's bodies are read with, against real servers on 127.0.0.1 (node:http,
 * raw node:net for what node:http will not send, node:https with a test certificate): every framing,
 * odd heads, slow readers, dropped and stalled connections, and TLS.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionError, HttpGet } from '../../src/hub/http-get.js';
import { TEST_TLS, seededBytes } from '../support/helpers.js';

const BODY = seededBytes(5 * 1024 * 1024 + 333, 7);

const servers: (Server | NetServer)[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    if ('closeAllConnections' in s) s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function listen<T extends Server | NetServer>(server: T): Promise<string> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function http(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  return listen(createHttpServer(handler));
}

/** A server that writes exactly what the test gives it, for answers node:http would not produce. */
function raw(onConnection: (socket: Socket, request: Promise<string>) => void): Promise<string> {
  const server = createNetServer((socket) => {
    socket.on('error', () => undefined);
    const request = new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (d) => {
        text += d.toString('latin1');
        if (text.includes('\r\n\r\n')) resolve(text);
      });
    });
    onConnection(socket, request);
  });
  return listen(server);
}

/** Reads the whole body in pieces of `size` bytes, waiting `delayMs` between pieces (a slow reader). */
async function readAll(get: HttpGet, size = 1 << 20, delayMs = 0): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (;;) {
    const piece = Buffer.alloc(size);
    const n = await get.read(piece);
    parts.push(piece.subarray(0, n));
    if (n < size) break;
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
  }
  return Buffer.concat(parts);
}

describe('HttpGet: bodies', () => {
  it.each([1 << 20, 4096, 777_777, 7])('a Content-Length body arrives byte-exact in reads of %i bytes, then ends complete', async (size) => {
    const body = size === 7 ? BODY.subarray(0, 100_000) : BODY;
    const url = await http((_, res) => {
      res.writeHead(200, { 'Content-Length': String(body.length) });
      res.end(body);
    });
    const get = await HttpGet.open(`${url}/file`);
    expect(get.status).toBe(200);
    expect(get.headers.get('content-length')).toBe(String(body.length));
    expect((await readAll(get, size)).equals(body)).toBe(true);
    expect(get.complete).toBe(true);
    expect(get.failure).toBeUndefined();
    // A reader that asks for large pieces has most of the body read straight into its memory.
    if (size === 1 << 20) expect(get.directBytes).toBeGreaterThan(0.8 * body.length);
  });

  it('a chunked body is reassembled without its framing, trailers included', async () => {
    const url = await http((_, res) => {
      res.writeHead(200, { Trailer: 'X-Check' });
      for (let at = 0; at < BODY.length; at += 300_001) res.write(BODY.subarray(at, at + 300_001));
      res.addTrailers({ 'X-Check': 'yes' });
      res.end();
    });
    const get = await HttpGet.open(url);
    expect(get.headers.get('transfer-encoding')).toBe('chunked');
    expect((await readAll(get, 1 << 20)).equals(BODY)).toBe(true);
    expect(get.complete).toBe(true);
  });

  it('a body without length ends with the connection: complete when closed, not when reset', async () => {
    const data = BODY.subarray(0, 200_000);
    const closed = await raw(async (socket, request) => {
      await request;
      socket.end(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n'), data]));
    });
    const get = await HttpGet.open(closed);
    expect((await readAll(get, 65536)).equals(data)).toBe(true);
    expect(get.complete).toBe(true);

    const reset = await raw(async (socket, request) => {
      await request;
      socket.write(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), data]), () => setTimeout(() => socket.resetAndDestroy(), 200));
    });
    const cut = await HttpGet.open(reset);
    const got = await readAll(cut, 1 << 20);
    // A reset may discard what the client's kernel still held: whatever came is the body's start.
    expect(got.equals(data.subarray(0, got.length))).toBe(true);
    expect(cut.complete).toBe(false);
    expect(cut.failure).toMatch(/ECONNRESET/);
  });

  it('a Content-Length body cut short gives a short read and complete false', async () => {
    const url = await http((_, res) => {
      res.writeHead(200, { 'Content-Length': String(BODY.length) });
      res.write(BODY.subarray(0, 1_000_000), () => res.destroy());
    });
    const get = await HttpGet.open(url);
    const got = await readAll(get);
    expect(got.equals(BODY.subarray(0, 1_000_000))).toBe(true);
    expect(get.complete).toBe(false);
  });

  it('bytes past the Content-Length are never handed over, whether buffered or read straight into the reader', async () => {
    const url = await raw(async (socket, request) => {
      await request;
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA');
      socket.end();
    });
    const get = await HttpGet.open(url);
    expect((await readAll(get, 3)).toString()).toBe('hello');
    expect(get.complete).toBe(true);

    // The rest arrives while a reader waits with room for more: it must stop at the length.
    const late = await raw(async (socket, request) => {
      await request;
      // The first piece after the reader came lands in the ring (node chose that buffer before); the next straight in the reader's.
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhe');
      await new Promise((r) => setTimeout(r, 100));
      socket.write('ll');
      await new Promise((r) => setTimeout(r, 100));
      socket.end('oEXTRA');
    });
    const direct = await HttpGet.open(late);
    const into = Buffer.alloc(100);
    expect(await direct.read(into)).toBe(5);
    expect(into.subarray(0, 5).toString()).toBe('hello');
    // Nothing past the body was written into the reader's memory either.
    expect(into.subarray(5).every((b) => b === 0)).toBe(true);
    expect(direct.complete).toBe(true);
  });

  it('a malformed chunk size ends the body early (complete false), with the reason', async () => {
    const url = await raw(async (socket, request) => {
      await request;
      socket.end(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nmore\r\n0\r\n\r\n'));
    });
    const get = await HttpGet.open(url);
    expect((await readAll(get, 100)).toString()).toBe('hello');
    expect(get.complete).toBe(false);
    expect(get.failure).toMatch(/chunk size/);
  });

  it('a slow reader holds the server back (TCP flow control), not memory, and still gets every byte in order', async () => {
    const big = Buffer.concat(Array.from({ length: 12 }, () => BODY));
    let sent = false;
    const url = await http((_, res) => {
      res.writeHead(200, { 'Content-Length': String(big.length) });
      res.end(big, () => (sent = true));
    });
    const get = await HttpGet.open(url);
    const first = Buffer.alloc(1000);
    expect(await get.read(first)).toBe(1000);
    await new Promise((r) => setTimeout(r, 300));
    // The socket filled its small ring and paused: the server cannot have sent 60 MiB, and a paused
    // connection is no silent network.
    expect(sent).toBe(false);
    expect(get.readingSince).toBeUndefined();
    // Back for more: the clock of silence starts now, not when the socket paused.
    const next = Buffer.alloc(1 << 20);
    const reading = get.read(next);
    expect(Date.now() - get.readingSince!).toBeLessThan(100);
    expect(await reading).toBe(next.length);
    const rest = Buffer.concat([next, await readAll(get, 250_000, 1)]);
    expect(Buffer.concat([first, rest]).equals(big)).toBe(true);
    expect(get.complete).toBe(true);
  });
});

describe('HttpGet: heads and failures', () => {
  it('sends the request line and headers asked for, with identity coding and Connection: close', async () => {
    let seen = '';
    const url = await raw(async (socket, request) => {
      seen = await request;
      socket.end('HTTP/1.1 204 No Content\r\n\r\n');
    });
    // Names in any case: one line each, ours last (a caller's gzip must not reach the server).
    const get = await HttpGet.open(`${url}/a%20b/c?x=1`, { headers: { Range: 'bytes=10-', Authorization: 'Bearer t', 'accept-encoding': 'gzip', 'user-agent': 'lib/1' } });
    expect(get.status).toBe(204);
    expect(await get.read(Buffer.alloc(10))).toBe(0);
    expect(get.complete).toBe(true);
    const lines = seen.split('\r\n');
    expect(lines[0]).toBe('GET /a%20b/c?x=1 HTTP/1.1');
    expect(lines).toEqual(expect.arrayContaining([`Host: ${new URL(url).host}`, 'Range: bytes=10-', 'Authorization: Bearer t', 'Accept-Encoding: identity', 'Connection: close', 'user-agent: lib/1']));
    expect(lines.filter((l) => /^accept-encoding:/i.test(l))).toEqual(['Accept-Encoding: identity']);
    expect(lines.filter((l) => /^user-agent:/i.test(l))).toHaveLength(1);
  });

  it('a head that arrives a few bytes at a time, after a 100 Continue, is read whole', async () => {
    const url = await raw(async (socket, request) => {
      await request;
      const text = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-3/4\r\nX-Odd:  spaced \r\nContent-Length: 4\r\n\r\nbody';
      for (let i = 0; i < text.length; i += 3) {
        socket.write(text.slice(i, i + 3));
        await new Promise((r) => setTimeout(r, 1));
      }
      socket.end();
    });
    const get = await HttpGet.open(url);
    expect(get.status).toBe(206);
    expect(get.headers.get('content-range')).toBe('bytes 0-3/4');
    expect(get.headers.get('x-odd')).toBe('spaced');
    expect((await readAll(get, 10)).toString()).toBe('body');
  });

  it('a head of 60 KiB (more than the ring keeps free) is still read; one of more than 64 KiB is refused', async () => {
    const answer = (bytes: number) => `HTTP/1.1 200 OK\r\nX-Big: ${'v'.repeat(bytes)}\r\nContent-Length: 2\r\n\r\nok`;
    const big = await raw(async (socket, request) => {
      await request;
      // In two pieces: after the first the ring has less room than a read, and the socket pauses.
      const text = answer(60_000);
      socket.write(text.slice(0, 55_000));
      await new Promise((r) => setTimeout(r, 100));
      socket.end(text.slice(55_000));
    });
    const get = await HttpGet.open(big, { idleMs: 5000 });
    expect(get.headers.get('x-big')).toHaveLength(60_000);
    expect((await readAll(get, 10)).toString()).toBe('ok');
    const huge = await raw(async (socket, request) => {
      await request;
      socket.end(answer(70_000));
    });
    await expect(HttpGet.open(huge, { idleMs: 5000 })).rejects.toThrow(/answer head of more than 65536 bytes/);
  });

  it.each([
    ['not HTTP', 'SSH-2.0-OpenSSH_9.6\r\n\r\n', /did not answer in HTTP\/1\.1/],
    ['a header line without a colon', 'HTTP/1.1 200 OK\r\nbroken\r\n\r\n', /malformed header/],
    ['two different lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n', /Content-Length/],
    ['a transfer coding other than chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', /transfer coding/],
    ['nothing before the connection closes', '', /closed before an answer/],
  ])('%s: a ConnectionError (retried by the client)', async (_, answer, message) => {
    const url = await raw(async (socket, request) => {
      await request;
      socket.end(answer);
    });
    await expect(HttpGet.open(url)).rejects.toThrow(ConnectionError);
    await expect(HttpGet.open(url)).rejects.toThrow(message);
  });

  it('a refused connection, an answer that never comes, and an address that is not http(s) are ConnectionErrors', async () => {
    const url = await raw(() => undefined);
    const port = new URL(url).port;
    const closedPort = await raw(() => undefined);
    await new Promise((r) => servers.pop()!.close(r));
    await expect(HttpGet.open(closedPort)).rejects.toThrow(/ECONNREFUSED/);
    const t0 = Date.now();
    await expect(HttpGet.open(`http://127.0.0.1:${port}/`, { idleMs: 300 })).rejects.toThrow(/no answer within/);
    expect(Date.now() - t0).toBeLessThan(5000);
    await expect(HttpGet.open('ftp://127.0.0.1/x')).rejects.toThrow(ConnectionError);
  });

  it('a line break in a header value, or a run already interrupted: refused before any request is sent', async () => {
    let connections = 0;
    const url = await raw((socket) => {
      connections++;
      socket.end('HTTP/1.1 204 No Content\r\n\r\n');
    });
    await expect(HttpGet.open(url, { headers: { Authorization: 'Bearer a\r\nX-Injected: 1' } })).rejects.toThrow(/line break in the Authorization header/);
    const controller = new AbortController();
    controller.abort();
    await expect(HttpGet.open(url, { signal: controller.signal })).rejects.toThrow(/interrupted/);
    await new Promise((r) => setTimeout(r, 100));
    expect(connections).toBe(0);
  });

  it('a stalled body: readingSince tells how long the network has been silent; cancel ends the read at once', async () => {
    const url = await http((_, res) => {
      res.writeHead(200, { 'Content-Length': String(BODY.length) });
      res.write(BODY.subarray(0, 10_000));
    });
    const get = await HttpGet.open(url);
    const reading = readAll(get);
    await new Promise((r) => setTimeout(r, 300));
    expect(Date.now() - get.readingSince!).toBeGreaterThanOrEqual(250);
    get.cancel('nothing received');
    const got = await reading;
    expect(got.equals(BODY.subarray(0, 10_000))).toBe(true);
    expect(get.complete).toBe(false);
    expect(get.failure).toBe('nothing received');
  });

  it('with idleMs, a body that stops coming is given up by itself, and the bytes before are kept', async () => {
    const url = await http((_, res) => {
      res.writeHead(200, { 'Content-Length': String(BODY.length) });
      res.write(BODY.subarray(0, 10_000));
    });
    const get = await HttpGet.open(url, { idleMs: 300 });
    const t0 = Date.now();
    const got = await readAll(get);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(got.equals(BODY.subarray(0, 10_000))).toBe(true);
    expect(get.complete).toBe(false);
    expect(get.failure).toMatch(/nothing received for 0 s/);
  });

  it('an abort signal ends a pending read', async () => {
    const url = await http((_, res) => {
      res.writeHead(200, { 'Content-Length': '100' });
      res.write('x');
    });
    const controller = new AbortController();
    const get = await HttpGet.open(url, { signal: controller.signal });
    expect(await get.read(Buffer.alloc(1))).toBe(1);
    const reading = get.read(Buffer.alloc(99));
    setTimeout(() => controller.abort(), 50);
    const t0 = Date.now();
    expect(await reading).toBe(0);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(get.failure).toBe('interrupted');
    expect(get.complete).toBe(false);
  });
});

describe('HttpGet over TLS', () => {
  const tls = { key: readFileSync(join(TEST_TLS, 'key.pem')), cert: readFileSync(join(TEST_TLS, 'cert.pem')) };

  async function https(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    const url = await listen(createHttpsServer(tls, handler));
    return url.replace('http:', 'https:');
  }

  it('reads a body byte-exact from a server whose certificate it trusts', async () => {
    const url = await https((req, res) => {
      res.writeHead(206, { 'Content-Length': String(BODY.length - 5), 'Content-Range': `bytes 5-${BODY.length - 1}/${BODY.length}`, 'X-Range': req.headers.range ?? '' });
      res.end(BODY.subarray(5));
    });
    const get = await HttpGet.open(url.replace('127.0.0.1', 'localhost'), { headers: { Range: 'bytes=5-' }, tls: { ca: tls.cert } });
    expect(get.status).toBe(206);
    expect(get.headers.get('x-range')).toBe('bytes=5-');
    expect((await readAll(get, 1 << 20, 1)).equals(BODY.subarray(5))).toBe(true);
    expect(get.complete).toBe(true);
  });

  it('refuses a certificate it does not trust (a ConnectionError naming the reason)', async () => {
    const url = await https((_, res) => res.end('secret'));
    await expect(HttpGet.open(url)).rejects.toThrow(/self.signed certificate/i);
  });
});

describe('trailers that never end (issue 19)', () => {
  it('more than 8 KiB of trailers ends the body, not complete, saying why', async () => {
    const url = await raw((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n');
      const line = `X-Pad: ${'a'.repeat(1000)}\r\n`;
      for (let i = 0; i < 20; i++) socket.write(line);
    });
    const get = await HttpGet.open(url);
    const buf = Buffer.alloc(64);
    expect(buf.subarray(0, await get.read(buf)).toString()).toBe('hello');
    expect(get.complete).toBe(false);
    expect(get.failure).toMatch(/trailers of more than 8 KiB after the body/);
  });

  it('trailers dripping a byte at a time, each one before the idle limit, are given up at the idle limit all the same', async () => {
    let timer: NodeJS.Timeout | undefined;
    const url = await raw((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Slow: ');
      timer = setInterval(() => socket.write('a'), 100);
      socket.on('close', () => clearInterval(timer));
    });
    const started = Date.now();
    const get = await HttpGet.open(url, { idleMs: 600 });
    const buf = Buffer.alloc(64);
    expect(await get.read(buf)).toBe(5);
    clearInterval(timer);
    expect(get.complete).toBe(false);
    expect(get.failure).toMatch(/the body's trailers did not end within 1 s/);
    // Bounded: well before the 80 s that 8 KiB at 10 bytes a second would take.
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});
