/**
 * One GGUF written from the shards of a decode as they stream by (decode --gguf). Its layout is fixed
 * before the first shard: the header's size does not depend on the order of the tensors, and each
 * shard's tensors (from the release's index) get a region of the data in shard order. Inside a
 * region, tensors go in the order their storages arrive; each is converted a block of rows at a time
 * (gguf-tensors.ts). The header, whose tensor infos follow the data's order, is written last, and the
 * file gets its final name only when every shard matched its published digest.
 */
import type { OutputSink } from '../codec/stream-job.js';
import { InputError } from '../errors.js';
import { isContiguous, type TensorLayout } from '../release/state-dict.js';
import { ggufHeader, padTo, type GgmlType, type GgufTensorInfo, type GgufValue } from './gguf-format.js';
import { ggufName, isQk, tensorType, typeLabel, type GgufTypeName } from './gguf-llama.js';
import { rowBytes, rowsOf } from './gguf-tensors.js';
import { BufferPool, TensorRoute } from './gguf-route.js';
import { StagedWriter } from './staged-writer.js';
import { commitTemp, discardTemp, type TempFile } from './temp-file.js';
import { StreamRefusal } from './stream-refusal.js';
import { TorchZipStream } from './torch-zip-stream.js';


/** The key that says whether every shard matched its published digest. */
export const VERIFIED_KEY = 'metharme_xor.shards_verified';

/** Blocks of rows a shard has converting at once, beyond which its writes wait (memory stays flat). */
const MAX_CONVERTING = 3;
/** The decoded stream is parsed this much at a time, the conversions in flight checked between. */
const PIECE_BYTES = 1 << 20;

export interface GgufTarget {
  /** HF tensor name -> shape, for every tensor the GGUF holds. */
  shapes: ReadonlyMap<string, readonly number[]>;
  /** Shard file name -> the HF tensors it holds (from the release's index). */
  shards: ReadonlyMap<string, readonly string[]>;
  type: Exclude<GgufTypeName, 'auto'>;
  /** The source dtype the type was chosen for (auto: the same bits). */
  dtype: string;
  headDim: number;
  layers: number;
  metadata: [string, GgufValue][];
}

interface Slot {
  info: GgufTensorInfo;
  shape: readonly number[];
  /** Absolute file offset of its data. */
  at: number;
}

export class GgufAssembly {
  private readonly headerBytes: number;
  /** Tensors whose rows are not whole blocks of the type asked, and the type each is written as instead. */
  readonly fellBack: { name: string; type: GgmlType }[];
  private readonly regions = new Map<string, { start: number; bytes: number }>();
  /** By shard: a shard fetched again is placed again. */
  private readonly slots = new Map<string, Slot[]>();
  private readonly verifiedShards = new Set<string>();
  /** One for the whole file: shards run one after another, or a few side by side, from the same buffers. */
  readonly pool = new BufferPool();
  private failed = false;
  private allVerified = true;
  private closed = false;

  constructor(
    private readonly temp: TempFile,
    private readonly target: GgufTarget,
  ) {
    const infos = [...target.shapes].map(([name, shape]) => this.infoOf(name, shape));
    this.fellBack = [...target.shapes].flatMap(([name, shape]) => {
      const chosen = tensorType(name, shape, target.type, target.layers);
      return chosen.fellBack ? [{ name, type: chosen.type }] : [];
    });
    this.headerBytes = ggufHeader(target.metadata, infos).header.length;
    let at = this.headerBytes;
    for (const [shard, names] of [...target.shards].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const bytes = names.reduce((n, name) => n + this.padded(name), 0);
      this.regions.set(shard, { start: at, bytes });
      at += bytes;
    }
  }

  get path(): string {
    return this.temp.path;
  }

  /** The type's name as llama.cpp users write it (BF16, Q8_0). */
  get type(): string {
    return typeLabel(this.target.type);
  }

  get tensorCount(): number {
    return this.target.shapes.size;
  }

  private infoOf(name: string, shape: readonly number[]): GgufTensorInfo {
    const { rows, cols } = rowsOf(shape);
    const type = tensorType(name, shape, this.target.type, this.target.layers).type;
    return { name: ggufName(name)!, ne: [...shape].reverse(), type, bytes: rowBytes(type, cols) * rows };
  }

  private padded(name: string): number {
    const info = this.infoOf(name, this.target.shapes.get(name)!);
    return info.bytes + padTo(info.bytes);
  }

  /**
   * Direct-write stages of a shard's sink. A lossless GGUF is as large as the checkpoint and is
   * written as fast as the disk takes it: three writes in flight rather than one took a 1 GiB decode
   * from 2.40 to 2.27 s (median of 5; 8 MB more). A quantized one is bound by its conversions.
   */
  get writeStages(): number {
    return this.target.type === 'q8_0' || this.target.type === 'q4_k_m' ? 2 : 4;
  }

  /** The sink that writes shard `shard` (whose decoded bytes stream through it) into its region; `directDir`: where direct writes may be probed. */
  sink(shard: string, source: string, directDir: string | undefined, size?: number): GgufShardSink {
    const region = this.regions.get(shard);
    if (!region) throw new Error(`${shard} has no region in the GGUF`);
    return new GgufShardSink(this, this.temp, shard, source, region.start, directDir, size);
  }

  /** Places a shard's tensors in arrival order within its region; what each storage holds. */
  place(shard: string, tensors: TensorLayout[], refuse: (reason: string) => never): Map<string, TensorRoute> {
    const wanted = new Set(this.target.shards.get(shard));
    const region = this.regions.get(shard)!;
    const routes = new Map<string, TensorRoute>();
    const slots: Slot[] = [];
    this.slots.set(shard, slots);
    let at = region.start;
    const order = [...tensors].sort((a, b) => (a.storageKey < b.storageKey ? -1 : a.storageKey > b.storageKey ? 1 : 0));
    for (const t of order) {
      if (t.name.endsWith('.rotary_emb.inv_freq')) continue;
      if (!wanted.delete(t.name)) refuse(`it holds "${t.name}", which the release's index does not put in this shard or a LLaMA has not`);
      const shape = this.target.shapes.get(t.name)!;
      if (t.shape.join() !== shape.join()) refuse(`"${t.name}" is ${JSON.stringify(t.shape)}, where config.json says ${JSON.stringify(shape)}`);
      if (t.dtype !== this.target.dtype) refuse(`"${t.name}" is ${t.dtype}, where config.json's torch_dtype says ${this.target.dtype}`);
      if (!isContiguous(t) || routes.has(t.storageKey)) refuse(`"${t.name}" is a view into a storage shared with other tensors`);
      const info = this.infoOf(t.name, shape);
      slots.push({ info, shape, at });
      routes.set(t.storageKey, new TensorRoute(t, info.type, isQk(t.name) ? this.target.headDim : undefined, at, this.pool));
      at += info.bytes + padTo(info.bytes);
    }
    if (wanted.size > 0) refuse(`it lacks "${[...wanted][0]}", which the release's index puts in it`);
    return routes;
  }

  /** A shard went into the file whole: `verified` when it matched its published digest. */
  shardDone(shard: string, verified: boolean): void {
    this.verifiedShards.add(shard);
    if (!verified) this.allVerified = false;
  }

  shardFailed(): void {
    this.failed = true;
  }

  /** Writes the header and gives the file its name when every shard went into it; else removes it. */
  async finish(): Promise<{ written: boolean; bytes: number; verified: boolean }> {
    if (this.closed) return { written: false, bytes: 0, verified: false };
    this.closed = true;
    const complete = !this.failed && [...this.target.shards.keys()].every((s) => this.verifiedShards.has(s));
    if (!complete) {
      await discardTemp(this.temp);
      return { written: false, bytes: 0, verified: false };
    }
    const infos = [...this.slots.values()].flat().sort((a, b) => a.at - b.at);
    // Said in the file itself: whether every shard matched a published digest (a fixed-size value).
    const metadata = this.target.metadata.map(([k, v]): [string, GgufValue] => (k === VERIFIED_KEY ? [k, { type: 'bool', value: this.allVerified }] : [k, v]));
    const { header, offsets } = ggufHeader(metadata, infos.map((s) => s.info));
    // The layout fixed at the start must be the one the header describes.
    infos.forEach((s, i) => {
      if (offsets[i]! + header.length !== s.at) throw new Error(`GGUF tensor ${s.info.name} at ${s.at}, its header says ${offsets[i]! + header.length}`);
    });
    if (header.length !== this.headerBytes) throw new Error('the GGUF header changed size');
    await this.temp.writeBuffered(header, header.length, 0);
    await commitTemp(this.temp);
    const last = infos.at(-1);
    return { written: true, bytes: last ? last.at + last.info.bytes + padTo(last.info.bytes) : header.length, verified: this.allVerified };
  }

  async discard(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await discardTemp(this.temp);
  }
}

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

  constructor(
    private readonly assembly: GgufAssembly,
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
  }
}
