/**
 * What one shard's decoded stream goes through on its way into the GGUF (decode --gguf): its zip
 * parsed as it comes, each tensor's rows converted a block at a time on the worker threads, and the
 * results written front to back through the shard's region of the file.
 */
import { crc32 } from 'node:zlib';
import type { OutputSink } from '../codec/stream-job.js';
import { InputError } from '../errors.js';
import type { GgufTensorInfo } from './gguf-format.js';
import type { BufferPool, TensorRoute } from './gguf-route.js';
import type { TensorLayout } from '../release/state-dict.js';
import { convertedCrc } from './convert-pool.js';
import { crc32Concat } from './crc32-concat.js';
import { StagedWriter } from './staged-writer.js';
import { StreamRefusal } from './stream-refusal.js';
import type { TempFile } from './temp-file.js';
import { TorchZipStream } from './torch-zip-stream.js';

export interface GgufSlot {
  info: GgufTensorInfo;
  /** Its name in the checkpoint, and its storage's key there. */
  hfName: string;
  key: string;
  /** Its bytes in the GGUF are its storage's in the checkpoint, as they are (so the zip's CRC-32 is theirs). */
  verbatim: boolean;
  shape: readonly number[];
  /** Absolute file offset of its data. */
  at: number;
}

/** What a shard's sink needs of the GGUF it goes into (gguf-assembly.ts). */
export interface ShardPlacement {
  readonly pool: BufferPool;
  readonly writeStages: number;
  place(shard: string, tensors: TensorLayout[], refuse: (reason: string) => never): Map<string, TensorRoute>;
  slotsOf(shard: string): readonly GgufSlot[];
  setCrcs(shard: string, crcs: number[] | undefined): void;
}

/** Blocks of rows a shard has converting at once, beyond which its writes wait (memory stays flat). */
const MAX_CONVERTING = 3;
/** The decoded stream is parsed this much at a time, the conversions in flight checked between. */
const PIECE_BYTES = 1 << 20;

export class GgufShardSink implements OutputSink {
  readonly path: string;
  readonly flush = undefined;
  private readonly stream: TorchZipStream;
  private routes: Map<string, TensorRoute> | undefined;
  private writes: Promise<unknown>[] = [];
  /** Direct writes, front to back through the region; page-cache writes where that cannot be. */
  private staged: StagedWriter | undefined;
  private cursor: number;
  /** Puts wait here for the conversions before them, so that bytes reach the file in order. */
  private order: Promise<void> = Promise.resolve();
  private converting = 0;
  /** Each conversion's place in `order`, oldest first: they settle in this order. */
  private readonly inFlight: Promise<void>[] = [];
  /** Whether bytes of the chunk being written were put as they are (not copied into the pool). */
  private borrowed = false;
  private serial: Promise<void> = Promise.resolve();
  private readonly refused = new StreamRefusal();
  /** The tensors placed in the region, and for each one the CRC-32 of its bytes so far and their count (NaN: not in order). */
  private slots: readonly GgufSlot[] = [];
  private readonly crcs: number[] = [];
  private readonly seen: number[] = [];

  constructor(
    private readonly assembly: ShardPlacement,
    private readonly temp: TempFile,
    private readonly shard: string,
    private readonly source: string,
    regionStart: number,
    directDir: string | undefined,
    size?: number,
  ) {
    this.path = temp.path;
    this.cursor = regionStart;
    this.staged = directDir ? StagedWriter.create(temp, directDir, regionStart, assembly.writeStages) : undefined;
    const refuse = (reason: string): never => {
      throw new InputError(`cannot be written into the GGUF: ${reason}`, { file: this.source, hint: 'decode without --gguf, then convert the folder with "metharme-xor gguf"' });
    };
    this.stream = new TorchZipStream(
      {
        onTensors: (tensors) => {
          this.routes = this.assembly.place(this.shard, tensors, refuse);
          this.slots = this.assembly.slotsOf(this.shard);
          this.crcs.push(...this.slots.map(() => 0));
          this.seen.push(...this.slots.map(() => 0));
          return new Map(tensors.map((t) => [t.storageKey, t.storageNumel * t.elementBytes]));
        },
        onStorage: (key, offset, bytes) => this.routes?.get(key)?.push(offset, bytes, (data, position, recycle) => this.put(data, position, recycle)),
      },
      refuse,
      size,
    );
  }

  /** The .bin's last bytes (its zip directory), also what the pickle check of the same stream reads. */
  get tail() {
    return this.stream.tail;
  }

  /**
   * Bytes of the region at `position`, in the order put (a conversion's once it is done): staged
   * while they come in order, else written where they go.
   */
  private put(data: Buffer | Promise<Buffer>, position: number, recycle?: Buffer[]): void {
    if (!recycle) this.borrowed = true;
    if (!(data instanceof Promise) && this.converting === 0) {
      this.issue(data, position, recycle);
      return;
    }
    this.converting++;
    this.order = Promise.all([this.order, data]).then(([, bytes]) => {
      this.converting--;
      this.inFlight.shift();
      this.issue(bytes, position, recycle);
    });
    this.inFlight.push(this.order);
    // Seen by write() or finish(), which wait for the chain; not an unhandled rejection meanwhile.
    this.order.catch(() => {});
  }

  /**
   * Waits until at most `limit` conversions are in flight: for the oldest, not for all of them, so
   * that the workers are handed the next blocks while the last ones convert (waiting for all left
   * them idle at every refill).
   */
  private async drainTo(limit: number): Promise<void> {
    while (this.converting > limit) await this.inFlight[0];
  }

  private issue(data: Buffer, position: number, recycle?: Buffer[]): void {
    this.checksum(data, position);
    if (this.staged && position !== this.cursor) {
      // Storages out of torch's order: what is staged is written, the rest goes through the page cache.
      this.writes.push(this.staged.finish());
      this.staged = undefined;
    }
    let write: Promise<unknown>;
    if (this.staged) {
      this.cursor += data.length;
      write = this.staged.append(data);
    } else write = this.temp.writeBuffered(data, data.length, position);
    this.writes.push(recycle ? write.then(() => recycle.forEach((b) => this.assembly.pool.give(b))) : write);
  }

  /**
   * The pipeline writes several chunks at once; here they are taken one after another, so that the
   * wait below holds back the next chunk, and the conversions in flight stay a few blocks.
   */
  write(data: Buffer, length: number): Promise<void> {
    const next = this.serial.then(() => this.take(data, length));
    this.serial = next.catch(() => {});
    return next;
  }

  get refusal(): Error | undefined {
    return this.refused.error;
  }

  private async take(data: Buffer, length: number): Promise<void> {
    // A piece at a time, so that the conversions in flight stay a few blocks, not a chunk's worth.
    for (let at = 0; at < length; at += PIECE_BYTES) {
      await this.drainTo(MAX_CONVERTING);
      // A stream that stops parsing is not converted further, and still hashed to the end.
      this.refused.attempt(() => this.stream.push(data.subarray(at, Math.min(length, at + PIECE_BYTES))));
    }
    // Conversions run on while the next chunks come, up to a few blocks; the decoded stream's own
    // bytes must be copied or written before its buffer is handed back.
    if (this.borrowed) await this.order;
    else await this.drainTo(MAX_CONVERTING);
    this.borrowed = false;
    const writes = this.writes;
    this.writes = [];
    await Promise.all(writes);
  }

  /**
   * Carries each tensor's CRC-32 over bytes put at `position`, for resuming (gguf-resume.ts). A tensor
   * whose bytes are its storage's takes the zip's CRC-32 at the end instead, and a converted block
   * brings its own from the worker: every GGUF byte checksummed on this thread cost a lossless GGUF a
   * tenth of its time.
   */
  private checksum(data: Buffer, position: number): void {
    let lo = 0;
    let hi = this.slots.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.slots[mid]!.at <= position) lo = mid;
      else hi = mid - 1;
    }
    for (let i = lo, from = 0; i < this.slots.length && from < data.length; i++) {
      const slot = this.slots[i]!;
      const start = Math.max(position + from, slot.at);
      const end = Math.min(position + data.length, slot.at + slot.info.bytes);
      if (start >= end) continue;
      if (!slot.verbatim) {
        const inOrder = start === slot.at + this.seen[i]! && !Number.isNaN(this.crcs[i]);
        // A block a worker converted comes with its CRC-32: joined, not computed again here.
        const made = start === position && end - position === data.length ? convertedCrc(data) : undefined;
        if (!inOrder) this.crcs[i] = NaN;
        else this.crcs[i] = made === undefined ? crc32(data.subarray(start - position, end - position), this.crcs[i]) : crc32Concat(this.crcs[i]!, made, data.length);
        this.seen[i] = end - slot.at;
      }
      from = end - position;
    }
  }

  /** After the whole .bin went by: its conversions are written; `refusal` says whether it converted whole. */
  async finish(): Promise<void> {
    await this.serial;
    this.refused.attempt(() => {
      this.stream.finish();
      const short = [...(this.routes?.values() ?? [])].find((r) => !r.complete);
      if (short) throw new InputError(`cannot be written into the GGUF: tensor "${short.name}" is cut short`, { file: this.source });
    });
    await this.order;
    await Promise.all(this.writes);
    await this.staged?.finish();
    const archive = this.stream.archive;
    const crcs = this.slots.map((s, i) => (s.verbatim ? archive?.record(`data/${s.key}`)?.crc : this.seen[i] === s.info.bytes ? this.crcs[i] : undefined));
    this.assembly.setCrcs(this.shard, crcs.every((c) => c !== undefined && !Number.isNaN(c)) ? (crcs as number[]) : undefined);
  }
}
