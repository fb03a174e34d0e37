/**
 * Resuming decode --gguf. A shard that went into the GGUF whole and matched its published digest is
 * recorded in the state once its part of the file is flushed: where its tensors went and the CRC-32
 * of each. A later run that lays the GGUF out the same way (the same release, type and settings)
 * reopens the kept file, reads those tensors back against their CRC-32s, and decodes only the other
 * shards. A CRC-32 and not a SHA-256: the tensors were proven when their shard matched; what is to
 * catch here is damage since. Even so, checksumming every byte on the thread that writes them cost a
 * lossless GGUF a tenth of its time, so a tensor kept as its storage's bytes takes the CRC-32 of the
 * shard's zip (part of the verified bytes), and a converted block brings its own from the conversion
 * worker (gguf-shard-sink.ts). Only verified shards are kept: with --no-verify, or without a
 * published digest, nothing vouches for what a part holds.
 */
import { unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { crc32 } from 'node:zlib';
import type { GgufAssembly } from '../output/gguf-assembly.js';
import type { GgufShardEntry, ResumeState } from '../output/state.js';
import { createTemp, discardTemp, partialDir, reopenTemp, type TempFile } from '../output/temp-file.js';
import type { DecodePlan, FilePlan } from '../plan/plan.js';
import { readFully } from '../rebuild/located-tensors.js';
import type { FileResult } from './results.js';
import { resultOf } from './run-context.js';
import type { Digests } from '../types.js';
import { findMatch } from '../verify/digests.js';

export interface GgufResumeContext {
  resume: ResumeState;
  /** Outputs are checked against their published digests (not --no-verify). */
  verifying: boolean;
  notify: (event: { type: 'note'; message: string }) => void;
}

const READ_BYTES = 4 << 20;

/** The CRC-32 of `bytes` bytes of `temp` from `start`, bytes past its end read as zeros (as a hole reads). */
async function crcOf(temp: TempFile, start: number, bytes: number, buf: Buffer): Promise<number> {
  let crc = 0;
  for (let done = 0; done < bytes; ) {
    const want = Math.min(buf.length, bytes - done);
    buf.fill(0, await readFully(temp.handle, buf.subarray(0, want), start + done), want);
    crc = crc32(buf.subarray(0, want), crc);
    done += want;
  }
  return crc;
}

/** Whether a kept shard's part of the file holds what was recorded: each tensor's CRC-32, zeros between them. */
async function partHolds(temp: TempFile, region: { start: number; bytes: number }, placed: readonly [string, number, number][], sizes: readonly number[]): Promise<boolean> {
  const buf = Buffer.alloc(READ_BYTES);
  for (let i = 0; i < placed.length; i++) {
    const [, at, crc] = placed[i]!;
    if ((await crcOf(temp, at, sizes[i]!, buf)) !== crc) return false;
    const next = i + 1 < placed.length ? placed[i + 1]![1] : region.start + region.bytes;
    const padding = next - at - sizes[i]!;
    if ((await crcOf(temp, at + sizes[i]!, padding, buf)) !== crc32(Buffer.alloc(padding))) return false;
  }
  return true;
}

/**
 * Gives `assembly` its file `name`: the one an interrupted run kept, with the shards it vouches for
 * restored, or a new one. Returns the restored shards' entries.
 */
export async function openGgufFile(assembly: GgufAssembly, name: string, plan: DecodePlan, ctx: GgufResumeContext): Promise<Map<string, GgufShardEntry>> {
  const resumed = new Map<string, GgufShardEntry>();
  const earlier = ctx.resume.ggufEntry();
  if (earlier) {
    const sameLayout = earlier.temp.name === name && earlier.layout === assembly.layout;
    const temp = sameLayout ? await reopenTemp(plan.outputDir, name, { ino: earlier.temp.ino }, { direct: true }) : undefined;
    if (temp) {
      for (const [shard, entry] of Object.entries(earlier.shards)) {
        const file = plan.files.find((f) => f.name === shard && f.convert === 'gguf');
        const region = assembly.regionOf(shard);
        const vouched = file !== undefined && region !== undefined && ctx.verifying && findMatch(file.expected, entry.digests) !== undefined;
        // Restored first (a placement this layout gives, which sizes its tensors), then read back.
        if (vouched && assembly.restore(shard, entry.placed)) {
          if (await partHolds(temp, region, entry.placed, assembly.slotsOf(shard).map((s) => s.info.bytes))) {
            resumed.set(shard, entry);
            continue;
          }
          assembly.unrestore(shard);
        }
        ctx.notify({ type: 'note', message: `${shard}: its part of the GGUF kept by an earlier run cannot be used (changed since, or no longer vouched for); decoding it again` });
      }
      if (resumed.size > 0) {
        assembly.use(temp);
        ctx.notify({ type: 'note', message: `${name}: resuming the GGUF an earlier run kept; ${resumed.size} of ${assembly.shardCount} shards are in it (each tensor's CRC-32 checked again)` });
        if (resumed.size < Object.keys(earlier.shards).length) await ctx.resume.recordGguf({ ...earlier, shards: Object.fromEntries(resumed) });
        return resumed;
      }
      await discardTemp(temp);
    } else {
      const why = sameLayout ? 'its file is gone or was replaced' : 'it was laid out for another type, release or settings';
      ctx.notify({ type: 'note', message: `${earlier.temp.name}: an earlier run kept this GGUF unfinished; starting it again (${why})` });
      await unlink(join(partialDir(plan.outputDir), earlier.temp.name)).catch(() => undefined);
    }
    await ctx.resume.forgetGguf();
  }
  assembly.use(await createTemp(plan.outputDir, name, { direct: true }));
  return resumed;
}

/**
 * A shard that went into the GGUF whole and verified: its part is flushed, then recorded, so that a
 * run cut off later (kill -9 included) resumes after it. The last shard is not: the GGUF is finished next.
 */
export async function keepGgufShard(assembly: GgufAssembly, shard: string, result: { digests: Digests; bytes: number }, ctx: GgufResumeContext): Promise<void> {
  const placed = assembly.placedOf(shard);
  if (!placed || assembly.shardsDone >= assembly.shardCount) return;
  const temp = assembly.file;
  await temp.handle.datasync();
  const { ino } = await temp.handle.stat({ bigint: true });
  const earlier = ctx.resume.ggufEntry();
  const entry = earlier ?? { layout: assembly.layout, temp: { name: basename(temp.tempPath), ino: ino.toString() }, shards: {} };
  entry.shards[shard] = { digests: result.digests, bytes: result.bytes, placed };
  await ctx.resume.recordGguf(entry);
}

/** The result of each shard taken from the kept GGUF, by its place in `files`. */
export function resumedResults(files: readonly FilePlan[], resumed: ReadonlyMap<string, GgufShardEntry>): Map<number, FileResult> {
  const results = new Map<number, FileResult>();
  files.forEach((file, i) => {
    const kept = file.convert === 'gguf' ? resumed.get(file.name) : undefined;
    if (!kept) return;
    const match = findMatch(file.expected, kept.digests);
    results.set(i, resultOf(file, performance.now(), { status: 'skipped', bytes: kept.bytes, digests: kept.digests, match }, { note: 'in the GGUF from an earlier run, which verified it; its tensors checked again by CRC-32' }));
  });
  return results;
}

/** An unfinished GGUF is removed, unless shards of it are recorded to resume: then it stays for the next run. */
export async function closeGguf(assembly: GgufAssembly, ctx: GgufResumeContext): Promise<void> {
  await assembly.discard({ keep: Object.keys(ctx.resume.ggufEntry()?.shards ?? {}).length > 0 });
}

/** A run that writes no GGUF: what an interrupted --gguf run kept is of no use, and is removed. */
export async function dropKeptGguf(outputDir: string, ctx: GgufResumeContext): Promise<void> {
  const earlier = ctx.resume.ggufEntry();
  if (!earlier) return;
  ctx.notify({ type: 'note', message: `${earlier.temp.name}: an earlier --gguf run kept this GGUF unfinished; removed, as this run writes no GGUF` });
  await unlink(join(partialDir(outputDir), earlier.temp.name)).catch(() => undefined);
  await ctx.resume.forgetGguf();
}
