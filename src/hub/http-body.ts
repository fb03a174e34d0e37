/**
 * An answer's body as its framing lays it out over the bytes buffered in the ring: a Content-Length,
 * chunked coding (size lines, data, CRLFs, trailers: http-message.ts reads each line) or the
 * connection's end. The connection (http-get.ts) owns the socket; this steps through what arrived.
 */
import type { ByteRing } from './byte-ring.js';
import { chunkLine, type Framing } from './http-message.js';

/** A chunk line longer than this is not HTTP we want to parse. */
const MAX_LINE_BYTES = 4096;

export interface BodyEvents {
  /** The body ended where its framing says. */
  finish(): void;
  /** The body is malformed: the connection is given up, for this reason. */
  cancel(why: string): void;
}

export class FramedBody {
  framing: Framing = { kind: 'close' };

  constructor(
    private readonly ring: ByteRing,
    private readonly events: BodyEvents,
  ) {}

  /** Body bytes may go straight to a reader: no framing to parse between them. */
  direct(): boolean {
    return this.framing.kind === 'length' || this.framing.kind === 'close';
  }

  /** Steps through the framing over the buffered bytes; the number of body bytes copied into `into`. */
  next(into: Uint8Array): number {
    for (;;) {
      const f = this.framing;
      if (f.kind === 'done') return 0;
      if (f.kind === 'close' || f.kind === 'length') {
        const n = Math.min(into.length, this.ring.length, f.kind === 'length' ? f.left : Infinity);
        this.ring.take(n, into);
        if (f.kind === 'length') {
          f.left -= n;
          if (f.left === 0) this.events.finish();
        }
        return n;
      }
      if (f.state === 'data') {
        const n = Math.min(into.length, this.ring.length, f.left);
        this.ring.take(n, into);
        f.left -= n;
        if (f.left === 0) f.state = 'crlf';
        return n;
      }
      const line = this.line();
      if (line === undefined) return 0;
      const outcome = chunkLine(f, line);
      if (outcome === 'end') this.events.finish();
      else if (outcome !== undefined) return this.events.cancel(outcome), 0;
    }
  }

  /** The next line (without its CRLF), or undefined until one has arrived. */
  private line(): string | undefined {
    const view = this.ring.peek(MAX_LINE_BYTES);
    const end = view.indexOf(0x0a);
    if (end < 0) {
      if (view.length >= MAX_LINE_BYTES) this.events.cancel(`a line of more than ${MAX_LINE_BYTES} bytes in the chunked body`);
      return undefined;
    }
    this.ring.take(end + 1);
    return view.subarray(0, end).toString('latin1').replace(/\r$/, '');
  }
}
