/**
 * One GGUF written from the shards of a decode as they stream by (decode --gguf). Its layout is fixed
 * before the first shard: the header's size does not depend on the order of the tensors, and each
 * shard's tensors (from the release's index) get a region of the data in shard order. Inside a
 * region, tensors go in the order their storages arrive; each is converted a block of rows at a time
 * (gguf-tensors.ts). The header, whose tensor infos follow the data's order, is written last, and the
 * file gets its final name only when every shard matched its published digest.
 */
import { createHash } from 'node:crypto';
import { isContiguous, type TensorLayout } from '../release/state-dict.js';
import { GGML_TYPE, ggufHeader, padTo, type GgmlType, type GgufTensorInfo, type GgufValue } from './gguf-format.js';
import { ggufName, isQk, tensorType } from './gguf-llama.js';
import { typeLabel, type GgufTypeName } from './gguf-types.js';
import { rowBytes, rowsOf } from './gguf-tensors.js';
import { BufferPool, TensorRoute } from './gguf-route.js';
import { commitTemp, discardTemp, keepTemp, type TempFile } from './temp-file.js';
import { GgufShardSink, type GgufSlot, type ShardPlacement } from './gguf-shard-sink.js';

/** The key that says whether every shard matched its published digest. */
export const VERIFIED_KEY = 'metharme_xor.shards_verified';

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

export class GgufAssembly implements ShardPlacement {
  private readonly headerBytes: number;
  /** The SHA-256 of the layout (header, types, regions): what an interrupted run's GGUF must share to be resumed. */
  readonly layout: string;
  private temp!: TempFile;
  /** By shard: the CRC-32 of each of its tensors' bytes as written, in the order placed. */
  private readonly crcs = new Map<string, number[]>();
  /** Tensors whose rows are not whole blocks of the type asked, and the type each is written as instead. */
  readonly fellBack: { name: string; type: GgmlType }[];
  private readonly regions = new Map<string, { start: number; bytes: number }>();
  /** By shard: a shard fetched again is placed again. */
  private readonly slots = new Map<string, GgufSlot[]>();
  private readonly verifiedShards = new Set<string>();
  /** One for the whole file: shards run one after another, or a few side by side, from the same buffers. */
  readonly pool = new BufferPool();
  private failed = false;
  private allVerified = true;
  private closed = false;

  /** The file it is written into comes with `use`: a new one, or the one an interrupted run kept (whose layout must be this one's). */
  constructor(private readonly target: GgufTarget) {
    const infos = [...target.shapes].map(([name, shape]) => this.infoOf(name, shape));
    this.fellBack = [...target.shapes].flatMap(([name, shape]) => {
      const chosen = tensorType(name, shape, target.type, target.layers);
      return chosen.fellBack ? [{ name, type: chosen.type }] : [];
    });
    const header = ggufHeader(target.metadata, infos).header;
    this.headerBytes = header.length;
    let at = this.headerBytes;
    for (const [shard, names] of [...target.shards].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const bytes = names.reduce((n, name) => n + this.padded(name), 0);
      this.regions.set(shard, { start: at, bytes });
      at += bytes;
    }
    this.layout = createHash('sha256').update(header).update(JSON.stringify([...this.regions])).digest('hex');
  }

  use(temp: TempFile): void {
    this.temp = temp;
  }

  get path(): string {
    return this.temp.path;
  }

  get file(): TempFile {
    return this.temp;
  }

  /** Where shard `shard`'s tensors go in the file. */
  regionOf(shard: string): { start: number; bytes: number } | undefined {
    return this.regions.get(shard);
  }

  /** A shard's tensors as placed. */
  slotsOf(shard: string): readonly GgufSlot[] {
    return this.slots.get(shard) ?? [];
  }

  /** The CRC-32 of each of a shard's tensors as written, or undefined where one is not known. */
  setCrcs(shard: string, crcs: number[] | undefined): void {
    if (crcs === undefined) this.crcs.delete(shard);
    else this.crcs.set(shard, crcs);
  }

  /** A shard's tensors as placed, with their offsets and CRC-32s: what resuming needs of it (undefined without the CRCs). */
  placedOf(shard: string): [string, number, number][] | undefined {
    const crcs = this.crcs.get(shard);
    return crcs && this.slotsOf(shard).map((s, i) => [s.hfName, s.at, crcs[i]!]);
  }

  /** Shards whose bytes are all in the file. */
  get shardsDone(): number {
    return this.verifiedShards.size;
  }

  get shardCount(): number {
    return this.target.shards.size;
  }

  /**
   * A shard an earlier run put into this file whole and verified: its tensors as that run placed them,
   * if that is a placement this layout gives (every tensor of the shard, front to back in its region).
   */
  restore(shard: string, placed: readonly (readonly [string, number, ...unknown[]])[]): boolean {
    const region = this.regions.get(shard);
    const wanted = new Set(this.target.shards.get(shard));
    if (!region || placed.length !== wanted.size) return false;
    const slots: GgufSlot[] = [];
    let at = region.start;
    for (const [name, offset] of placed) {
      const shape = this.target.shapes.get(name);
      if (!shape || !wanted.delete(name) || offset !== at) return false;
      const info = this.infoOf(name, shape);
      slots.push({ info, shape, at, hfName: name, key: '', verbatim: false });
      at += info.bytes + padTo(info.bytes);
    }
    if (at !== region.start + region.bytes) return false;
    this.slots.set(shard, slots);
    this.verifiedShards.add(shard);
    return true;
  }

  /** Undoes `restore`: the shard is to be decoded into the file again. */
  unrestore(shard: string): void {
    this.slots.delete(shard);
    this.verifiedShards.delete(shard);
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
    const slots: GgufSlot[] = [];
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
      const verbatim = info.type === GGML_TYPE[t.dtype as keyof typeof GGML_TYPE] && !isQk(t.name) && t.offset === 0 && t.storageNumel * t.elementBytes === info.bytes;
      slots.push({ info, shape, at, hfName: t.name, key: t.storageKey, verbatim });
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

  /** Writes the header and gives the file its name when every shard went into it. */
  async finish(): Promise<{ written: boolean; bytes: number; verified: boolean }> {
    const complete = !this.failed && [...this.target.shards.keys()].every((s) => this.verifiedShards.has(s));
    // Unfinished, the file is left to `discard`, which keeps it where shards of it are recorded to resume.
    if (this.closed || !complete) return { written: false, bytes: 0, verified: false };
    this.closed = true;
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

  /** Removes the unfinished file, or with `keep` (shards of it are recorded to resume) leaves it flushed for the next run. */
  async discard(options: { keep?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (options.keep) await keepTemp(this.temp);
    else await discardTemp(this.temp);
  }
}
