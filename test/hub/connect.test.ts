/** The CONNECT tunnel through a proxy, against raw servers on 127.0.0.1 that answer as the test says. */
import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { connect } from '../../src/hub/connect.js';
import { ConnectionError } from '../../src/hub/http-message.js';
import type { Proxy } from '../../src/hub/proxy.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A proxy that reads the CONNECT request and answers `answer` (undefined: never answers). */
async function proxy(answer: string | undefined, seen: string[] = []): Promise<Proxy> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.on('data', (d) => {
      seen.push(d.toString('latin1'));
      if (answer !== undefined) socket.end(answer);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: new URL(`http://u:p%20w@127.0.0.1:${(server.address() as AddressInfo).port}`), variable: 'HTTPS_PROXY' };
}

const onread = { buffer: () => Buffer.alloc(16), callback: () => true };
const target = new URL('https://hub.example:8443/a/b?c=1');

describe('connect through a proxy (https: CONNECT)', () => {
  it('asks for a tunnel to host:port with the credentials of the proxy address', async () => {
    const seen: string[] = [];
    const p = await proxy('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n', seen);
    await expect(connect(target, { proxy: p, onread }, {})).rejects.toThrow(/the proxy in HTTPS_PROXY \(127\.0\.0\.1:\d+\) answered HTTP 502 to CONNECT hub\.example:8443/);
    expect(seen.join('')).toBe(`CONNECT hub.example:8443 HTTP/1.1\r\nHost: hub.example:8443\r\nProxy-Authorization: Basic ${Buffer.from('u:p w').toString('base64')}\r\n\r\n`);
  });

  it.each([
    ['HTTP/1.1 407 Proxy Authentication Required\r\n\r\n', InputError, /asks for credentials \(HTTP 407\); give them in the proxy's address: HTTPS_PROXY=http:\/\/user:password@127\.0\.0\.1:\d+/],
    ['SSH-2.0-OpenSSH\r\n\r\n', ConnectionError, /did not answer in HTTP\/1\.1/],
    ['', ConnectionError, /closed the connection before answering CONNECT/],
  ])('answered %j: %s', async (answer, kind, message) => {
    const p = await proxy(answer);
    const err = await connect(target, { proxy: p, onread }, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(kind);
    expect(err instanceof InputError ? err.oneLine() : (err as Error).message).toMatch(message);
  });

  it('a proxy that never answers is given up after the timeout; an abort ends the wait at once', async () => {
    const p = await proxy(undefined);
    await expect(connect(target, { proxy: p, onread }, { timeoutMs: 200 })).rejects.toThrow(/did not answer within 0 s/);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await expect(connect(target, { proxy: p, onread }, { signal: controller.signal })).rejects.toThrow(/interrupted/);
  });
});
