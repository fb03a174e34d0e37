/**
 * One HTTP/1.1 GET on a connection of its own (node:net, or node:tls for https; directly or through
 * a proxy: connect.ts), whose body the socket reads straight into the reader's buffer. Why not fetch:
 * on the loopback bench, fetch handed over every 64 KiB the socket delivered as a freshly allocated
 * buffer through web streams, about 1.5 s of CPU per GiB on the main thread and 1 s on the garbage
 * collector's threads, on a 2-core machine whose cores the decoder needs. A socket with `onread`
 * reads where it is told: into the waiting reader's buffer (the pipeline's slot), else into a small
 * ring until the reader comes back; the kernel's socket buffer reads ahead. A 1 GiB body now costs
 * about 0.2 s of CPU. Bodies are framed by Content-Length, chunked coding (through the ring) or the
 * connection's end (http-body.ts); 1xx answers are skipped. Redirects, statuses and retries are hub/client.ts's.
 */
import type net from 'node:net';
import type tls from 'node:tls';
import { ByteRing } from './byte-ring.js';
import { connect } from './connect.js';
import type { Proxy } from './proxy.js';
import { watchIdle } from './http-watchdog.js';
import { FramedBody } from './http-body.js';
import { ConnectionError, parseHead, requestText } from './http-message.js';

export { ConnectionError } from './http-message.js';

export interface HttpGetOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /**
   * No complete answer head within this long, or nothing received for this long while the body is
   * wanted: the connection is given up (a stalled one would wait forever). A reader slow to take
   * the bytes is no stall.
   */
  idleMs?: number;
  /** More TLS options (tests: a certificate authority of their own). */
  tls?: tls.ConnectionOptions;
  /** The proxy to go through (hub/proxy.ts), if any. */
  proxy?: Proxy | undefined;
}

/** A small ring for answer heads, chunk lines and the bytes that arrive while no reader waits. */
const RING_BYTES = 64 << 10;
/** With less room than this in the ring and no reader waiting, the socket pauses: the kernel buffers meanwhile. */
const MIN_ROOM_BYTES = 16 << 10;
/** Where the socket reads when the ring has no room at all (the read asked for as it paused). */
const SPARE_BYTES = 16 << 10;
/** A head or a chunk line longer than this is not HTTP we want to parse. */
const MAX_HEAD_BYTES = RING_BYTES;
const CRLFCRLF = Buffer.from('\r\n\r\n');
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
  headers = new Headers();
  /** The body ended where its framing says it ends; false for a connection that dropped before that. */
  complete = false;
  /** Why the connection ended early, when it did. */
  failure: string | undefined;
  /** Body bytes the socket read straight into a reader's buffer, with no copy (the rest went through the ring). */
  directBytes = 0;
  /** The error code behind `failure`, when there was one. */
  private failureCode: string | undefined;

  private socket: net.Socket | undefined;
  private readonly ring = new ByteRing(RING_BYTES);
  private spare: Buffer | undefined;
  private landing = Landing.ring;
  private target: Target | undefined;
  private eof = false;
  private paused = false;
  private lastByteAt = Date.now();
  private waiter: (() => void) | undefined;
  private readonly body = new FramedBody(this.ring, { finish: () => this.finish(), cancel: (why) => this.cancel(why) });
  private readonly onAbort = () => this.cancel('interrupted');
  private watchdog: NodeJS.Timeout | undefined;

  private constructor(
    private readonly url: URL,
    private readonly options: HttpGetOptions,
  ) {}

  /** Connects, sends the GET and reads the answer's head; the body is then read with `read`. */
  static async open(url: string, options: HttpGetOptions = {}): Promise<HttpGet> {
    const get = new HttpGet(new URL(url), options);
    try {
      await get.start();
      await get.readHead();
    } catch (err) {
      get.cancel();
      throw err;
    }
    if (options.idleMs && get.body.framing.kind !== 'done') get.watchdog = watchIdle(get, options.idleMs);
    return get;
  }

  private async start(): Promise<void> {
    const { signal, headers = {} } = this.options;
    // Before connecting: a request that cannot be written must not leave a connection behind.
    requestText(this.url, headers);
    signal?.addEventListener('abort', this.onAbort, { once: true });
    if (signal?.aborted) throw new ConnectionError('interrupted');
    const onread = { buffer: () => this.nextBuffer(), callback: (n: number) => this.received(n) };
    const conn = await connect(this.url, { proxy: this.options.proxy, onread, tls: this.options.tls }, { signal, timeoutMs: this.options.idleMs });
    this.socket = conn.socket;
    // Cancelled while the tunnel was being set up.
    if (this.eof) throw new ConnectionError(this.failure ?? 'cancelled');
    if (!conn.onread) this.socket.on('data', (chunk: Buffer) => this.received(chunk.length, chunk));
    this.socket.on('error', (err: NodeJS.ErrnoException) => {
      this.failureCode ??= err.code;
      this.ended(err.message);
    });
    for (const event of ['end', 'close']) this.socket.on(event, () => this.ended());
    // Written before the connection is up: node queues it until then (after the handshake, for TLS).
    this.socket.write(requestText(this.url, { ...conn.headers, ...headers }, conn.target));
  }

  /** The reader's buffer while one waits (and nothing is buffered before it), else the ring's free space. */
  private nextBuffer(): Uint8Array {
    const t = this.target;
    if (t && t.filled < t.buf.length && this.ring.length === 0 && this.body.direct()) {
      this.landing = Landing.target;
      const want = t.buf.length - t.filled;
      return t.buf.subarray(t.filled, t.filled + (this.body.framing.kind === 'length' ? Math.min(want, this.body.framing.left) : want));
    }
    const free = this.ring.freeSpace();
    if (free.length === 0) {
      this.landing = Landing.spare;
      return (this.spare ??= Buffer.allocUnsafe(SPARE_BYTES));
    }
    this.landing = Landing.ring;
    return free;
  }

  /** `n` bytes read where `nextBuffer` said; or, from a socket without onread, the `chunk` it read. */
  private received(n: number, chunk?: Buffer): boolean {
    this.lastByteAt = Date.now();
    const t = this.target;
    if (chunk) {
      this.ring.put(chunk);
    } else if (this.landing === Landing.target && t) {
      t.filled += n;
      this.directBytes += n;
      if (this.body.framing.kind === 'length') {
        this.body.framing.left -= n;
        if (this.body.framing.left === 0) this.finish();
      }
    } else if (this.landing === Landing.ring) {
      this.ring.added(n);
    } else {
      this.ring.put(this.spare!.subarray(0, n));
    }
    if (t && t.filled < t.buf.length) {
      // Bytes that reached the ring while a reader waits go on to it at once.
      for (let got = 1; got > 0 && t.filled < t.buf.length; t.filled += got) got = this.body.next(t.buf.subarray(t.filled));
    }
    const waiting = t !== undefined && t.filled < t.buf.length && this.body.framing.kind !== 'done';
    if (!waiting) this.wake();
    if (!waiting && this.ring.room < MIN_ROOM_BYTES) {
      this.paused = true;
      // With onread, returning false pauses the socket; 'data' events need it said.
      if (chunk) this.socket?.pause();
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
      this.socket?.resume();
    }
  }

  private async readHead(): Promise<void> {
    const timeoutMs = this.options.idleMs;
    const timer = timeoutMs ? setTimeout(() => this.cancel(`no answer within ${Math.round(timeoutMs / 1000)} s`), timeoutMs) : undefined;
    try {
      for (;;) {
        const view = this.ring.peek(MAX_HEAD_BYTES);
        const end = view.indexOf(CRLFCRLF);
        if (end < 0) {
          if (view.length >= MAX_HEAD_BYTES) throw new ConnectionError(`${this.url.host} sent an answer head of more than ${MAX_HEAD_BYTES} bytes`);
          if (this.eof) throw new ConnectionError(`${this.url.host}: ${this.failure ?? 'the connection closed before an answer'}`, this.failureCode);
          this.resume();
          await this.waitForBytes();
          continue;
        }
        this.ring.take(end + 4);
        const head = parseHead(view.subarray(0, end).toString('latin1'), this.url.host);
        this.status = head.status;
        this.headers = head.headers;
        this.body.framing = head.framing;
        // 1xx answers come before the real one (101 would switch protocols, which a GET never asks for).
        if (this.status >= 100 && this.status < 200) continue;
        if (this.body.framing.kind === 'done') this.finish();
        return;
      }
    } finally {
      clearTimeout(timer);
    }
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
      for (let got = 1; got > 0 && filled < into.length; filled += got) got = this.body.next(into.subarray(filled));
      if (filled === into.length) break;
      if (this.body.framing.kind === 'done') {
        this.complete = true;
        break;
      }
      if (last) {
        if (this.body.framing.kind === 'close' && this.failure === undefined) this.complete = true;
        break;
      }
      if (this.body.direct() && this.ring.length === 0) {
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

  /** The body has ended where its framing says: the connection has nothing more to give. */
  private finish(): void {
    this.body.framing = { kind: 'done' };
    this.complete = true;
    this.release();
  }

  private release(): void {
    this.options.signal?.removeEventListener('abort', this.onAbort);
    clearInterval(this.watchdog);
    this.socket?.destroy();
  }

  /**
   * When the network last delivered while the body was wanted; undefined while the socket is paused
   * because the consumer has not taken what it has, or after it ended. For the idle watchdog.
   */
  get readingSince(): number | undefined {
    return this.paused || this.eof || this.body.framing.kind === 'done' ? undefined : this.lastByteAt;
  }

  get trailersSince(): number | undefined {
    const f = this.body.framing;
    return f.kind === 'chunked' && f.state === 'trailers' ? f.since : undefined;
  }

  /** Closes the connection; what is buffered stays readable, and `read` then ends (not complete). */
  cancel(why = 'cancelled'): void {
    if (this.body.framing.kind === 'done') return this.release();
    if (this.failure === undefined && !this.eof) this.failure = why;
    this.eof = true;
    this.release();
    this.wake();
  }
}
