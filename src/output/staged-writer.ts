/**
 * Sequential output staged in an aligned buffer and written with O_DIRECT in whole blocks: the way a
 * .bin output avoids the page cache, for outputs whose bytes do not come from the pipeline's aligned
 * buffers (a safetensors file assembled from pieces of the decoded stream). Appends are serialised.
 */
import { DIRECT_ALIGN, findDirectOffset } from '../codec/direct-io.js';
import type { TempFile } from './temp-file.js';

const STAGE_BYTES = 8 << 20;

export class StagedWriter {
  private fill = 0;
  /** File offset of the first staged byte; always a multiple of DIRECT_ALIGN. */
  private fileOffset = 0;
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    private readonly temp: TempFile,
    private readonly stage: Buffer,
  ) {}

  /** A writer for `temp` (written from offset 0), where the file system takes direct writes. */
  static create(temp: TempFile, dir: string): StagedWriter | undefined {
    if (!temp.direct) return undefined;
    const raw = Buffer.allocUnsafeSlow(STAGE_BYTES + DIRECT_ALIGN);
    const offset = findDirectOffset(raw, dir);
    return offset === undefined ? undefined : new StagedWriter(temp, raw.subarray(offset, offset + STAGE_BYTES));
  }

  /** Appends `data`, which belongs right after everything appended so far. Resolves once it is copied. */
  append(data: Buffer): Promise<void> {
    this.queue = this.queue.then(async () => {
      for (let i = 0; i < data.length; ) {
        const n = Math.min(data.length - i, this.stage.length - this.fill);
        data.copy(this.stage, this.fill, i, i + n);
        this.fill += n;
        i += n;
        if (this.fill === this.stage.length) await this.drain(false);
      }
    });
    return this.queue;
  }

  /** Writes the whole blocks staged (all of it when `final`: the tail goes through the page cache). */
  private async drain(final: boolean): Promise<void> {
    const n = final ? this.fill : this.fill - (this.fill % DIRECT_ALIGN);
    if (n === 0) return;
    await this.temp.write(this.stage, n, this.fileOffset);
    this.stage.copy(this.stage, 0, n, this.fill);
    this.fileOffset += n;
    this.fill -= n;
  }

  finish(): Promise<void> {
    this.queue = this.queue.then(() => this.drain(true));
    return this.queue;
  }
}
