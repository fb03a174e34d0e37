/**
 * Sequential output staged in aligned buffers and written with O_DIRECT in whole blocks: the way a
 * .bin output avoids the page cache, for outputs whose bytes do not come from the pipeline's aligned
 * buffers (a safetensors file assembled from pieces of the decoded stream). The stages take turns:
 * one fills while the others are written; appends are serialised.
 */
import { DIRECT_ALIGN, findDirectOffset, pageAlignedBuffer } from '../codec/direct-io.js';
import type { TempFile } from './temp-file.js';

/** 4 MiB writes went as fast as 8 MiB ones here, and hold 8 MiB less (a converting decode's RSS). */
const STAGE_BYTES = 4 << 20;

interface Stage {
  data: Buffer;
  /** The write of this stage's previous contents, if one is under way. */
  writing: Promise<void>;
}

export class StagedWriter {
  private current = 0;
  private fill = 0;
  /** File offset of the current stage's first byte; always a multiple of DIRECT_ALIGN. */
  private fileOffset = 0;
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    private readonly temp: TempFile,
    private readonly stages: Stage[],
  ) {}

  /**
   * A writer for `temp` written from `start` (a multiple of DIRECT_ALIGN), where the file system takes
   * direct writes; `stages` of STAGE_BYTES, all but one of them being written at a time.
   */
  static create(temp: TempFile, dir: string, start = 0, stages = 2): StagedWriter | undefined {
    if (!temp.direct || start % DIRECT_ALIGN !== 0) return undefined;
    const raw = pageAlignedBuffer(stages * STAGE_BYTES + DIRECT_ALIGN);
    const offset = findDirectOffset(raw, dir);
    if (offset === undefined) return undefined;
    const stage = (i: number) => ({ data: raw.subarray(offset + i * STAGE_BYTES, offset + (i + 1) * STAGE_BYTES), writing: Promise.resolve() });
    const writer = new StagedWriter(temp, Array.from({ length: stages }, (_, i) => stage(i)));
    writer.fileOffset = start;
    return writer;
  }

  /** Appends `data`, which belongs right after everything appended so far. Resolves once it is copied. */
  append(data: Buffer): Promise<void> {
    this.queue = this.queue.then(async () => {
      for (let i = 0; i < data.length; ) {
        const stage = this.stages[this.current]!;
        const n = Math.min(data.length - i, stage.data.length - this.fill);
        data.copy(stage.data, this.fill, i, i + n);
        this.fill += n;
        i += n;
        if (this.fill === stage.data.length) await this.switchStage();
      }
    });
    return this.queue;
  }

  /** Starts writing the full stage and continues in the other one, once its last write is done. */
  private async switchStage(): Promise<void> {
    const full = this.stages[this.current]!;
    full.writing = this.temp.write(full.data, full.data.length, this.fileOffset);
    this.fileOffset += full.data.length;
    this.fill = 0;
    this.current = (this.current + 1) % this.stages.length;
    await this.stages[this.current]!.writing;
  }

  /** Writes what is staged (the unaligned tail goes through the page cache) and waits for every write. */
  finish(): Promise<void> {
    this.queue = this.queue.then(async () => {
      const stage = this.stages[this.current]!;
      if (this.fill > 0) await this.temp.write(stage.data, this.fill, this.fileOffset);
      await Promise.all(this.stages.map((s) => s.writing));
    });
    return this.queue;
  }
}
