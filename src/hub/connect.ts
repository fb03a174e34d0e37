/**
 * Opens the connection an HTTP/1.1 GET is sent on: directly, through a plain-http proxy (http
 * addresses: the request names the whole URL), or through a proxy's CONNECT tunnel (https addresses:
 * TLS inside the tunnel). Where node allows it the socket reads through `onread` (straight into the
 * reader's buffers, http-get.ts); node ignores `onread` for TLS over a tunnel, whose bytes then come
 * as 'data' events.
 */
import net from 'node:net';
import tls from 'node:tls';
import { InputError } from '../errors.js';
import { ConnectionError, parseHead } from './http-message.js';
import { proxyAuthorization, type Proxy } from './proxy.js';

export interface OnRead {
  buffer: () => Uint8Array;
  callback: (n: number) => boolean;
}

export interface Connection {
  socket: net.Socket;
  /** Bytes arrive through `onread`; else as 'data' events. */
  onread: boolean;
  /** What the request line names: the path, or the whole URL for a plain-http proxy. */
  target: string;
  /** Headers every request on it needs (a plain-http proxy's credentials). */
  headers: Record<string, string>;
}

export interface ConnectOptions {
  proxy: Proxy | undefined;
  onread: OnRead;
  tls?: tls.ConnectionOptions | undefined;
}

function tlsOptions(url: URL, host: string, extra: tls.ConnectionOptions | undefined): tls.ConnectionOptions {
  return { ...(net.isIP(host) ? {} : { servername: host }), ALPNProtocols: ['http/1.1'], ...extra };
}

/** The socket for `url`. A tunnel is set up before this returns; a direct socket may still be connecting (writes queue). */
export async function connect(url: URL, options: ConnectOptions, tunnel: { signal?: AbortSignal; timeoutMs?: number }): Promise<Connection> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConnectionError(`cannot fetch ${url.protocol} addresses (${url.href})`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
  const path = `${url.pathname}${url.search}`;
  const { proxy, onread } = options;
  if (!proxy) {
    const socket =
      url.protocol === 'https:'
        ? // tls.connect takes onread too (node >= 15.1), though @types/node does not say so.
          tls.connect({ host, port, onread, ...tlsOptions(url, host, options.tls) } as tls.ConnectionOptions)
        : net.connect({ host, port, onread });
    return { socket, onread: true, target: path, headers: {} };
  }
  const proxyHost = proxy.url.hostname.replace(/^\[(.*)\]$/, '$1');
  const proxyPort = Number(proxy.url.port) || 80;
  if (url.protocol === 'http:') {
    const socket = net.connect({ host: proxyHost, port: proxyPort, onread });
    return { socket, onread: true, target: `http://${url.host}${path}`, headers: proxyAuthorization(proxy) };
  }
  const raw = net.connect({ host: proxyHost, port: proxyPort });
  try {
    await openTunnel(raw, `${host.includes(':') ? `[${host}]` : host}:${port}`, proxy, tunnel);
  } catch (err) {
    raw.destroy();
    throw err;
  }
  const socket = tls.connect({ socket: raw, ...tlsOptions(url, host, options.tls) });
  // Failures surface on the TLS socket; one on the tunnel's own must not go unheard (an uncaught 'error').
  raw.on('error', () => undefined);
  return { socket, onread: false, target: path, headers: {} };
}

/** Asks the proxy for a tunnel to `authority` and waits for its 200. */
function openTunnel(raw: net.Socket, authority: string, proxy: Proxy, options: { signal?: AbortSignal; timeoutMs?: number }): Promise<void> {
  const where = `the proxy in ${proxy.variable} (${proxy.url.host})`;
  return new Promise<void>((resolve, reject) => {
    let head = Buffer.alloc(0);
    const done = (err?: Error) => {
      clearTimeout(timer);
      raw.off('data', onData);
      raw.off('error', onError);
      raw.off('close', onClose);
      options.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 16 << 10) done(new ConnectionError(`${where} sent an answer head of more than 16 KiB`));
        return;
      }
      raw.pause();
      // Anything after the head already belongs to the tunnel.
      if (end + 4 < head.length) raw.unshift(head.subarray(end + 4));
      let status: number;
      try {
        ({ status } = parseHead(head.subarray(0, end).toString('latin1'), where));
      } catch (err) {
        return done(err as Error);
      }
      if (status === 200) return done();
      if (status === 407) {
        return done(
          new InputError(`${where} asks for credentials (HTTP 407)`, {
            hint: `give them in the proxy's address: ${proxy.variable}=http://user:password@${proxy.url.host}`,
          }),
        );
      }
      done(new ConnectionError(`${where} answered HTTP ${status} to CONNECT ${authority}`));
    };
    const onError = (err: NodeJS.ErrnoException) => done(new ConnectionError(`${where}: ${err.message}`, err.code));
    const onClose = () => done(new ConnectionError(`${where} closed the connection before answering CONNECT ${authority}`));
    const onAbort = () => done(new ConnectionError('interrupted'));
    const timer = setTimeout(() => done(new ConnectionError(`${where} did not answer within ${Math.round((options.timeoutMs ?? 0) / 1000)} s`)), options.timeoutMs ?? 2 ** 31 - 1);
    raw.on('data', onData);
    raw.on('error', onError);
    raw.on('close', onClose);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) return onAbort();
    raw.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${Object.entries(proxyAuthorization(proxy)).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
  });
}
