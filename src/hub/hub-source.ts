/**
 * A file on the Hub as a byte source for the pipeline: its bytes go from the network into the
 * pipeline's buffers, never to disk. A dropped connection is picked up again with a Range request
 * from the current offset; a server that ignored the Range has the bytes before the offset skipped,
 * never spliced in; nothing past the listed size is taken; and the file's SHA-256 is computed on the
 * way (here, or by the pipeline on a worker: see leaveHashing), so an LFS file is checked against
 * the listing's digest without a second pass.
 */
import { createHash, type Hash } from 'node:crypto';
import type { ByteSource } from '../codec/sources.js';
import { InputError, interruptedBy } from '../errors.js';
import type { Integrity } from '../types.js';
import type { HubClient, HubFile } from './client.js';
import { pause } from './pause.js';
import type { HttpGet } from './http-get.js';

export class HubSource implements ByteSource {
  private position = 0;
  private body: HttpGet | undefined;
  /** Bytes of the current body to drop before `position` (a server that ignored the Range). */
  private skip = 0;
  private hash: Hash | undefined = createHash('sha256');
  private digest: string | undefined;
  private finished = false;
  /** Connections opened for this file, for reports and tests. */
  connections = 0;
  /** Ends a pending read at once on Ctrl-C, even when the server has stopped sending. */
  private readonly onAbort = () => this.body?.cancel('interrupted');

  constructor(
    private readonly client: HubClient,
    private readonly repo: string,
    private readonly commit: string,
    private readonly file: HubFile,
    /** What users see: the hf:// address. */
    readonly path: string,
    private readonly signal?: AbortSignal,
    /** Resuming: the first byte to fetch (the file's SHA-256 is then left to the caller: leaveHashing). */
    start = 0,
    /** Where the bytes wanted end (exclusive): the request is bounded there; the file's end by default. */
    private readonly end = file.size,
  ) {
    this.position = start;
    // The bytes before `start` are not read here: only the caller can complete the file's SHA-256.
    if (start > 0) this.leaveHashing();
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /**
   * The caller hashes the bytes this source delivers (the pipeline, on a worker: reading the network
   * and hashing on one thread made that thread a Hub decode's longest chain) and hands the SHA-256
   * back with `hashed`.
   */
  leaveHashing(): this {
    this.hash = undefined;
    return this;
  }

  /** The SHA-256 of the whole file, computed by the caller (see leaveHashing); ignored unless all of it was read. */
  hashed(sha256: string): void {
    if (this.finished) this.digest = sha256;
  }

  private async connect(): Promise<void> {
    const { body, bodyStart } = await this.client.withRetries(
      this.path,
      () => this.client.openRange(this.repo, this.commit, this.file.path, this.position, this.file.size, this.signal, this.end),
      this.signal,
    );
    this.connections++;
    this.body = body;
    this.skip = this.position - bodyStart;
  }

  async read(buf: Buffer, want: number): Promise<number> {
    const limit = Math.min(want, this.end - this.position);
    let filled = 0;
    let drops = 0;
    while (filled < limit) {
      if (!this.body) await this.connect();
      // Bytes before the offset (a server that ignored the Range) land where the wanted ones will, and are dropped.
      const room = this.skip > 0 ? Math.min(this.skip, limit - filled) : limit - filled;
      const n = await this.body!.read(buf.subarray(filled, filled + room));
      if (n === 0) {
        if (this.signal?.aborted) throw interruptedBy(this.signal);
        // The body ended before the listed size: the connection dropped or stalled. Pick up from here.
        this.body!.cancel();
        this.body = undefined;
        if (++drops > this.client.retry.attempts) {
          throw new InputError(`the connection kept dropping at byte ${this.position} of ${this.file.size}`, { file: this.path, hint: 'check the network, then run again' });
        }
        await pause(Math.min(this.client.retry.maxDelayMs, this.client.retry.baseDelayMs * 2 ** (drops - 1)), this.signal);
        if (this.signal?.aborted) throw interruptedBy(this.signal);
        continue;
      }
      if (this.skip > 0) {
        this.skip -= n;
        continue;
      }
      this.hash?.update(buf.subarray(filled, filled + n));
      filled += n;
      this.position += n;
    }
    if (this.position === this.file.size && !this.finished) await this.finishBody();
    // A bounded read that got what it asked for: the rest of the body (a server that ignored the Range) is not taken.
    else if (this.position === this.end && this.end < this.file.size) await this.close();
    return filled;
  }

  /** At the listed size the body must end: more bytes mean the file is not the one listed. */
  private async finishBody(): Promise<void> {
    this.finished = true;
    this.digest = this.hash?.digest('hex');
    const extra = this.body ? await this.body.read(Buffer.alloc(1)) : 0;
    if (extra > 0) {
      await this.close();
      throw new InputError(`the Hub sent more than the ${this.file.size} bytes its listing gives`, { file: this.path, hint: 'the file changed on the Hub; run again' });
    }
  }

  /** After the whole file was read: does it match the SHA-256 the listing gave (LFS files)? */
  integrity(): Integrity {
    if (this.digest === undefined || !this.file.lfsSha256) return 'unknown';
    return this.digest === this.file.lfsSha256 ? 'intact' : 'differs';
  }

  async close(): Promise<void> {
    this.signal?.removeEventListener('abort', this.onAbort);
    this.body?.cancel();
    this.body = undefined;
  }
}
