/**
 * An HTTP proxy on 127.0.0.1, as corporate networks put between users and the Hub: CONNECT tunnels
 * for https addresses, absolute-form requests forwarded for http ones, and, when asked, credentials
 * required (407 without them). It records what it was asked.
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export interface ProxyRequest {
  method: string;
  target: string;
  authorization: string | undefined;
}

export class ProxyStandIn {
  readonly requests: ProxyRequest[] = [];
  /** user:password the proxy requires, if any. */
  credentials: string | undefined;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  url = '';

  async start(): Promise<void> {
    this.server = createServer((client) => this.handle(client));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server?.close(r));
  }

  reset(): void {
    this.requests.length = 0;
    this.credentials = undefined;
  }

  private track(socket: Socket): Socket {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    return socket;
  }

  /** Connects to host:port, answers the client `reply`, sends `first` on, then relays both ways. */
  private relay(client: Socket, host: string, port: number, reply: string, first: Buffer[]): void {
    const upstream = this.track(
      connect({ host, port }, () => {
        if (reply) client.write(reply);
        for (const b of first) if (b.length) upstream.write(b);
        client.pipe(upstream).pipe(client);
        client.resume();
      }),
    );
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
  }

  private handle(client: Socket): void {
    this.track(client);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      client.off('data', onData);
      client.pause();
      const [requestLine = '', ...lines] = head.subarray(0, end).toString('latin1').split('\r\n');
      const rest = head.subarray(end + 4);
      const [method = '', target = ''] = requestLine.split(' ');
      const authorization = lines.find((l) => /^proxy-authorization:/i.test(l))?.replace(/^[^:]*:\s*/, '');
      this.requests.push({ method, target, authorization });
      if (this.credentials && authorization !== `Basic ${Buffer.from(this.credentials).toString('base64')}`) {
        client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      if (method === 'CONNECT') {
        const at = target.lastIndexOf(':');
        this.relay(client, target.slice(0, at).replace(/^\[(.*)\]$/, '$1'), Number(target.slice(at + 1)), 'HTTP/1.1 200 Connection Established\r\n\r\n', [rest]);
        return;
      }
      // Plain http: the request goes on with an origin-form target and without the proxy's credentials.
      const url = new URL(target);
      const kept = lines.filter((l) => !/^proxy-authorization:/i.test(l));
      this.relay(client, url.hostname, Number(url.port) || 80, '', [Buffer.from(`${method} ${url.pathname}${url.search} HTTP/1.1\r\n${kept.join('\r\n')}\r\n\r\n`), rest]);
    };
    client.on('data', onData);
  }
}
