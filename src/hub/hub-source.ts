/**
 * A file on the Hub as a byte source for the pipeline: its bytes go from the network into the
 * pipeline's buffers, never to disk. A dropped connection is picked up again with a Range request
 * from the current offset; a server that ignored the Range has the bytes before the offset skipped,
 * never spliced in; nothing past the listed size is taken; and the file's SHA-256 is computed on the
 * way, so an LFS file is checked against the listing's digest without a second pass.
 */
import { createHash, type Hash } from 'node:crypto';
import type { ByteSource } from '../codec/sources.js';
import { InputError } from '../errors.js';
import type { Integrity } from '../types.js';
import type { HubClient, HubFile } from './client.js';

export class HubSource implements ByteSource {
  private position = 0;
  private reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  private leftover: Uint8Array | undefined;
  /** Bytes of the current body to drop before `position` (a server that ignored the Range). */
  private skip = 0;
  private readonly hash: Hash = createHash('sha256');
  private digest: string | undefined;
  /** Connections opened for this file, for reports and tests. */
  connections = 0;

  constructor(
    private readonly client: HubClient,
    private readonly repo: string,
    private readonly commit: string,
    private readonly file: HubFile,
    /** What users see: the hf:// address. */
    readonly path: string,
    private readonly signal?: AbortSignal,
  ) {}

  private async connect(): Promise<void> {
    const { body, bodyStart } = await this.client.withRetries(
      this.path,
      () => this.client.openRange(this.repo, this.commit, this.file.path, this.position, this.file.size),
      this.signal,
    );
    this.connections++;
    this.reader = body.getReader();
    this.leftover = undefined;
    this.skip = this.position - bodyStart;
  }

  private async next(): Promise<Uint8Array | undefined> {
    if (this.leftover) {
      const chunk = this.leftover;
      this.leftover = undefined;
      return chunk;
    }
    const { done, value } = await this.reader!.read();
    return done ? undefined : value;
  }

  async read(buf: Buffer, want: number): Promise<number> {
    const limit = Math.min(want, this.file.size - this.position);
    let filled = 0;
    let drops = 0;
    while (filled < limit) {
      if (!this.reader) await this.connect();
      let chunk: Uint8Array | undefined;
      try {
        chunk = await this.next();
      } catch {
        chunk = undefined;
      }
      if (chunk === undefined) {
        // The body ended before the listed size: the connection dropped. Pick up from here.
        this.reader = undefined;
        if (++drops > this.client.retry.attempts) {
          throw new InputError(`the connection kept dropping at byte ${this.position} of ${this.file.size}`, { file: this.path, hint: 'check the network, then run again' });
        }
        await new Promise((r) => setTimeout(r, Math.min(this.client.retry.maxDelayMs, this.client.retry.baseDelayMs * 2 ** (drops - 1))));
        continue;
      }
      if (this.skip > 0) {
        const dropped = Math.min(this.skip, chunk.length);
        this.skip -= dropped;
        chunk = chunk.subarray(dropped);
        if (chunk.length === 0) continue;
      }
      const take = Math.min(chunk.length, limit - filled);
      buf.set(chunk.subarray(0, take), filled);
      this.hash.update(chunk.subarray(0, take));
      filled += take;
      this.position += take;
      if (take < chunk.length) this.leftover = chunk.subarray(take);
    }
    if (this.position === this.file.size && this.digest === undefined) await this.finishBody();
    return filled;
  }

  /** At the listed size the body must end: more bytes mean the file is not the one listed. */
  private async finishBody(): Promise<void> {
    this.digest = this.hash.digest('hex');
    const extra = this.leftover?.length ? this.leftover : this.reader ? await this.next().catch(() => undefined) : undefined;
    if (extra && extra.length > 0) {
      await this.close();
      throw new InputError(`the Hub sent more than the ${this.file.size} bytes its listing gives`, { file: this.path, hint: 'the file changed on the Hub; run again' });
    }
  }

  /** After the whole file was read: does it match the SHA-256 the listing gave (LFS files)? */
  integrity(): Integrity {
    if (this.digest === undefined || !this.file.lfsSha256) return 'unknown';
    return this.digest === this.file.lfsSha256 ? 'intact' : 'differs';
  }

  /** The SHA-256 of what was read, once all of it was. */
  sha256(): string | undefined {
    return this.digest;
  }

  async close(): Promise<void> {
    await this.reader?.cancel().catch(() => undefined);
    this.reader = undefined;
  }
}
