/**
 * One HTTP/1.1 GET on a connection of its own (node:net, or node:tls for https), its body read into
 * one fixed ring buffer. Why not fetch for the bodies: on the loopback bench fetch handed over every
 * 64 KiB the socket delivered as a freshly allocated buffer through web streams, about 1.5 s of CPU
 * per GiB on the main thread plus about 1 s on the garbage collector's threads, on a 2-core machine
 * whose cores the decoder needs. A socket with `onread` reads into the same memory every time, and
 * the bytes are copied once, into the ring, then once more, into the decoder's buffer.
 *
 * What it understands is what a GET of a file needs: a status line and headers (1xx skipped), and a
 * body framed by Content-Length, chunked transfer coding, or the end of the connection. It asks for
 * `identity` content coding and closes the connection after the body. Redirects, status codes and
 * retries are the caller's (hub/client.ts).
 */
import net from 'node:net';
import tls from 'node:tls';

/** The connection failed, or the server did not speak HTTP/1.1: worth trying again. */
export class ConnectionError extends Error {}

export interface HttpGetOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** No complete answer head within this long: the connection is given up. */
  headTimeoutMs?: number;
  /** More TLS options (tests: a certificate authority of their own). */
  tls?: tls.ConnectionOptions;
}

/** A small ring for answer heads, chunk lines and the bytes that arrive while no reader waits. */
const RING_BYTES = 64 << 10;
/** With less room than this in the ring and no reader waiting, the socket pauses: the kernel buffers meanwhile. */
const MIN_ROOM_BYTES = 16 << 10;
/** Where the socket reads when the ring has no room at all (a read already under way when it paused). */
const SPARE_BYTES = 16 << 10;
/** A head or a chunk line longer than this is not HTTP we want to parse. */
const MAX_HEAD_BYTES = RING_BYTES;
const MAX_LINE_BYTES = 4096;
const CRLFCRLF = Buffer.from('\r\n\r\n');

type Framing =
  | { kind: 'length'; left: number }
  | { kind: 'chunked'; state: 'size' | 'data' | 'crlf' | 'trailers'; left: number }
  | { kind: 'close' }
  | { kind: 'done' };

/** Where the socket's next read lands. */
const enum Landing {
  ring,
  target,
  spare,
}

/** A reader waiting for `buf` to fill; the socket reads straight into it. */
interface Target {
  buf: Uint8Array;
  filled: number;
}

export class HttpGet {
  status = 0;
  readonly headers = new Headers();
  /** The body ended where its framing says it ends; false for a connection that dropped before that. */
  complete = false;
  /** Why the connection ended early, when it did. */
  failure: string | undefined;

  private readonly socket: net.Socket;
  private readonly ring = Buffer.allocUnsafe(RING_BYTES);
  private spare: Buffer | undefined;
  /** Absolute counts of bytes taken out of, and put into, the ring. */
  private head = 0;
  private tail = 0;
  /** Bytes read into the spare buffer, after the ring's. */
  private readonly overflow: Buffer[] = [];
  private landing = Landing.ring;
  private target: Target | undefined;
  private eof = false;
  private paused = false;
  private lastByteAt = Date.now();
  private waiter: (() => void) | undefined;
  private framing: Framing = { kind: 'close' };
  private readonly onAbort = () => this.cancel('interrupted');

  private constructor(
    private readonly url: URL,
    private readonly options: HttpGetOptions,
  ) {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    // node asks for the buffer of each next read right after the previous one was handed over.
    const onread = { buffer: () => this.nextBuffer(), callback: (n: number) => this.received(n) };
    this.socket =
      url.protocol === 'https:'
        ? // tls.connect takes onread too (node >= 15.1), though @types/node does not say so.
          tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }), ALPNProtocols: ['http/1.1'], onread, ...options.tls } as tls.ConnectionOptions)
        : net.connect({ host, port, onread });
    this.socket.on('error', (err) => this.ended(`${err.message}`));
    this.socket.on('end', () => this.ended());
    this.socket.on('close', () => this.ended());
    options.signal?.addEventListener('abort', this.onAbort, { once: true });
    // Written before the connection is up: node queues it until then (after the handshake, for TLS).
    this.socket.write(this.request());
  }

  /** Connects, sends the GET and reads the answer's head; the body is then read with `read`. */
  static async open(url: string, options: HttpGetOptions = {}): Promise<HttpGet> {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ConnectionError(`cannot fetch ${parsed.protocol} addresses (${url})`);
    const get = new HttpGet(parsed, options);
    try {
      await get.readHead();
    } catch (err) {
      get.cancel();
      throw err;
    }
    return get;
  }

  private request(): string {
    const headers: Record<string, string> = {
      Host: this.url.host,
      'User-Agent': 'metharme-xor',
      ...this.options.headers,
      'Accept-Encoding': 'identity',
      Connection: 'close',
    };
    const lines = Object.entries(headers).map(([name, value]) => {
      // A line break in a value would start a header of its own.
      if (/[\r\n]/.test(name + value)) throw new ConnectionError(`a line break in the ${name} header`);
      return `${name}: ${value}\r\n`;
    });
    return `GET ${this.url.pathname}${this.url.search} HTTP/1.1\r\n${lines.join('')}\r\n`;
  }

  private room(): number {
    return this.ring.length - (this.tail - this.head);
  }

  private buffered(): number {
    return this.tail - this.head;
  }

  private put(data: Buffer): void {
    const at = this.tail % this.ring.length;
    const first = Math.min(data.length, this.ring.length - at);
    data.copy(this.ring, at, 0, first);
    if (first < data.length) data.copy(this.ring, 0, first);
    this.tail += data.length;
  }

  /** Body bytes may go straight to a reader: no framing to parse between them. */
  private direct(): boolean {
    return this.framing.kind === 'length' || this.framing.kind === 'close';
  }

  /** The reader's buffer while one waits (and nothing is buffered before it), else the ring's free space. */
  private nextBuffer(): Uint8Array {
    const t = this.target;
    if (t && t.filled < t.buf.length && this.buffered() === 0 && this.overflow.length === 0 && this.direct()) {
      this.landing = Landing.target;
      const want = t.buf.length - t.filled;
      return t.buf.subarray(t.filled, t.filled + (this.framing.kind === 'length' ? Math.min(want, this.framing.left) : want));
    }
    const room = this.room();
    if (room === 0 || this.overflow.length > 0) {
      this.landing = Landing.spare;
      return (this.spare ??= Buffer.allocUnsafe(SPARE_BYTES));
    }
    this.landing = Landing.ring;
    const at = this.tail % this.ring.length;
    return this.ring.subarray(at, at + Math.min(room, this.ring.length - at));
  }

  private received(n: number): boolean {
    this.lastByteAt = Date.now();
    const t = this.target;
    if (this.landing === Landing.target && t) {
      t.filled += n;
      if (this.framing.kind === 'length') {
        this.framing.left -= n;
        if (this.framing.left === 0) this.finish();
      }
    } else if (this.landing === Landing.ring) {
      this.tail += n;
    } else {
      this.overflow.push(Buffer.from(this.spare!.subarray(0, n)));
    }
    if (t && t.filled < t.buf.length) {
      // Bytes that reached the ring while a reader waits go on to it at once.
      for (let got = 1; got > 0 && t.filled < t.buf.length; t.filled += got) got = this.next(t.buf.subarray(t.filled));
    }
    const waiting = t !== undefined && t.filled < t.buf.length && this.framing.kind !== 'done';
    if (!waiting) this.wake();
    if (!waiting && this.room() < MIN_ROOM_BYTES) {
      this.paused = true;
      return false;
    }
    return true;
  }

  private ended(failure?: string): void {
    if (failure !== undefined && this.failure === undefined && !this.eof) this.failure = failure;
    this.eof = true;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  private waitForBytes(): Promise<void> {
    return new Promise((resolve) => (this.waiter = resolve));
  }

  private resume(): void {
    if (this.paused && !this.eof) {
      this.paused = false;
      // A reader that took a while to come back is not a silent network.
      this.lastByteAt = Date.now();
      this.socket.resume();
    }
  }

  /** Takes out `n` buffered bytes (into `into` when given), then makes room for the socket again. */
  private take(n: number, into?: Uint8Array): void {
    if (into) {
      const at = this.head % this.ring.length;
      const first = Math.min(n, this.ring.length - at);
      into.set(this.ring.subarray(at, at + first));
      if (first < n) into.set(this.ring.subarray(0, n - first), first);
    }
    this.head += n;
    while (this.overflow.length > 0 && this.room() >= this.overflow[0]!.length) this.put(this.overflow.shift()!);
    if (this.overflow.length === 0 && this.room() >= MIN_ROOM_BYTES) this.resume();
  }

  /** The buffered bytes from the read position, up to `max` (a copy: they may wrap around the ring). */
  private peek(max: number): Buffer {
    const n = Math.min(max, this.buffered());
    const out = Buffer.allocUnsafe(n);
    const at = this.head % this.ring.length;
    const first = Math.min(n, this.ring.length - at);
    this.ring.copy(out, 0, at, at + first);
    if (first < n) this.ring.copy(out, first, 0, n - first);
    return out;
  }

  /** The next line (without its CRLF), or undefined until one has arrived. */
  private line(): string | undefined {
    const view = this.peek(MAX_LINE_BYTES);
    const end = view.indexOf(0x0a);
    if (end < 0) {
      if (view.length >= MAX_LINE_BYTES) this.cancel(`a line of more than ${MAX_LINE_BYTES} bytes in the chunked body`);
      return undefined;
    }
    this.take(end + 1);
    return view.subarray(0, end).toString('latin1').replace(/\r$/, '');
  }

  private async readHead(): Promise<void> {
    const timeoutMs = this.options.headTimeoutMs;
    const timer = timeoutMs ? setTimeout(() => this.cancel(`no answer within ${Math.round(timeoutMs / 1000)} s`), timeoutMs) : undefined;
    try {
      for (;;) {
        const view = this.peek(MAX_HEAD_BYTES);
        const end = view.indexOf(CRLFCRLF);
        if (end < 0) {
          if (view.length >= MAX_HEAD_BYTES) throw new ConnectionError(`${this.url.host} sent an answer head of more than ${MAX_HEAD_BYTES} bytes`);
          if (this.eof) throw new ConnectionError(`${this.url.host}: ${this.failure ?? 'the connection closed before an answer'}`);
          await this.waitForBytes();
          continue;
        }
        this.take(end + 4);
        this.parseHead(view.subarray(0, end).toString('latin1'));
        // 1xx answers come before the real one (101 would switch protocols, which a GET never asks for).
        if (this.status >= 100 && this.status < 200) continue;
        if (this.framing.kind === 'done') this.finish();
        return;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private parseHead(text: string): void {
    const [statusLine = '', ...lines] = text.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine);
    if (!m) throw new ConnectionError(`${this.url.host} did not answer in HTTP/1.1 (${JSON.stringify(statusLine.slice(0, 40))})`);
    this.status = Number(m[1]);
    for (const name of [...this.headers.keys()]) this.headers.delete(name);
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon <= 0) throw new ConnectionError(`${this.url.host} sent a malformed header line`);
      try {
        this.headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
      } catch {
        throw new ConnectionError(`${this.url.host} sent a malformed header line`);
      }
    }
    this.framing = this.framingOf();
  }

  /** How the body ends (RFC 9112, section 6.3). */
  private framingOf(): Framing {
    if (this.status < 200 || this.status === 204 || this.status === 304) return { kind: 'done' };
    const codings = this.headers.get('transfer-encoding');
    if (codings !== null) {
      const list = codings.split(',').map((c) => c.trim().toLowerCase());
      if (list.at(-1) !== 'chunked' || list.some((c) => c !== 'chunked' && c !== 'identity')) {
        throw new ConnectionError(`${this.url.host} sent the body with transfer coding "${codings}", which is not read here`);
      }
      return { kind: 'chunked', state: 'size', left: 0 };
    }
    const length = this.headers.get('content-length');
    if (length !== null) {
      const values = new Set(length.split(',').map((v) => v.trim()));
      const value = values.size === 1 ? [...values][0]! : '';
      if (!/^\d+$/.test(value)) throw new ConnectionError(`${this.url.host} sent Content-Length "${length}"`);
      return Number(value) === 0 ? { kind: 'done' } : { kind: 'length', left: Number(value) };
    }
    return { kind: 'close' };
  }

  /**
   * Fills `into` with the next body bytes, or with as many as there are before the body ends. A short
   * count means it has ended: `complete` tells whether where its framing says, or the connection dropped.
   */
  async read(into: Uint8Array): Promise<number> {
    let filled = 0;
    while (filled < into.length) {
      // Whether the socket had ended before this look: then nothing that is not buffered will come.
      const last = this.eof;
      for (let got = 1; got > 0 && filled < into.length; filled += got) got = this.next(into.subarray(filled));
      if (filled === into.length) break;
      if (this.framing.kind === 'done') {
        this.complete = true;
        break;
      }
      if (last) {
        if (this.framing.kind === 'close' && this.failure === undefined) this.complete = true;
        break;
      }
      if (this.direct() && this.buffered() === 0 && this.overflow.length === 0) {
        // The socket reads straight into `into` from its next read on (the one already asked for lands in the ring).
        const t: Target = { buf: into, filled };
        this.target = t;
        this.resume();
        await this.waitForBytes();
        this.target = undefined;
        filled = t.filled;
      } else {
        this.resume();
        await this.waitForBytes();
      }
    }
    return filled;
  }

  /** Steps through the framing over the buffered bytes; the number of body bytes copied into `into`. */
  private next(into: Uint8Array): number {
    for (;;) {
      const f = this.framing;
      if (f.kind === 'done') return 0;
      if (f.kind === 'close' || f.kind === 'length') {
        const n = Math.min(into.length, this.buffered(), f.kind === 'length' ? f.left : Infinity);
        this.take(n, into);
        if (f.kind === 'length') {
          f.left -= n;
          if (f.left === 0) this.finish();
        }
        return n;
      }
      if (f.state === 'data') {
        const n = Math.min(into.length, this.buffered(), f.left);
        this.take(n, into);
        f.left -= n;
        if (f.left === 0) f.state = 'crlf';
        return n;
      }
      const line = this.line();
      if (line === undefined) return 0;
      if (f.state === 'size') {
        const size = /^([0-9a-fA-F]{1,13})[ \t]*(;.*)?$/.exec(line);
        if (!size) return this.cancel(`a malformed chunk size line in the body`), 0;
        f.left = parseInt(size[1]!, 16);
        f.state = f.left === 0 ? 'trailers' : 'data';
      } else if (f.state === 'crlf') {
        if (line !== '') return this.cancel(`a chunk longer than its size line said`), 0;
        f.state = 'size';
      } else if (line === '') {
        this.finish();
      }
    }
  }

  /** The body has ended where its framing says: the connection has nothing more to give. */
  private finish(): void {
    this.framing = { kind: 'done' };
    this.complete = true;
    this.release();
  }

  private release(): void {
    this.options.signal?.removeEventListener('abort', this.onAbort);
    this.socket.destroy();
  }

  /**
   * When the network last delivered while the body was wanted; undefined while the socket is paused
   * because the consumer has not taken what it has, or after it ended. For an idle watchdog.
   */
  get readingSince(): number | undefined {
    return this.paused || this.eof || this.framing.kind === 'done' ? undefined : this.lastByteAt;
  }

  /** Closes the connection; what is buffered stays readable, and `read` then ends (not complete). */
  cancel(why = 'cancelled'): void {
    if (this.framing.kind === 'done') return this.release();
    if (this.failure === undefined && !this.eof) this.failure = why;
    this.eof = true;
    this.release();
    this.wake();
  }
}
