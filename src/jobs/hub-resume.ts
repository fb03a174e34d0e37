/**
 * Resuming inside a file whose payload or base comes from the Hub. A file cut off (Ctrl-C, a network
 * that stays down, kill -9) keeps its temporary output and, in the state, how much of it is whole.
 * The next run re-hashes that prefix from disk, rebuilds the payload's SHA-256 prefix from it
 * (payload = output XOR base), and fetches only the rest with a Range request. What cannot be
 * resumed restarts from byte 0, and says so.
 */
import { unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { identify, type PartialEntry, type ResumeState } from '../output/state.js';
import { Checkpoints } from '../output/checkpoints.js';
import { createTemp, keepTemp, partialDir, reopenTemp, type TempFile } from '../output/temp-file.js';
import type { FilePlan } from '../plan/plan.js';

/** What resuming needs of the run. */
export interface ResumeContext {
  outputDir: string;
  resume: ResumeState;
  /** Outputs are checked against their published digests (not --no-verify). */
  verifying: boolean;
  notify: (event: { type: 'note'; message: string }) => void;
}

/** Why a file fetched from the Hub cannot be resumed inside, or undefined if it can. */
function whyNotResumable(file: FilePlan): string | undefined {
  if (file.action === 'xor-gzip') return 'a gzip payload cannot be resumed inside';
  if (file.convert) return 'a conversion to safetensors cannot be resumed inside';
  return undefined;
}

/**
 * What the kept bytes were decoded from, as the state records it; undefined for a file nothing of
 * which is fetched (it is decoded again at disk speed). Something must vouch for a prefix kept on
 * disk: a Hub payload's listed SHA-256 (checked on the rebuilt payload, even with --no-verify), or
 * for a local payload decoded against a Hub base, the published digest of the output (so only when
 * outputs are verified).
 */
async function payloadIdentity(file: FilePlan, verifying: boolean): Promise<string | undefined> {
  const hub = file.hub && !file.hub.cached ? file.hub.file : undefined;
  if (hub) return hub.lfsSha256 && `sha256:${hub.lfsSha256}`;
  if (!file.baseHub || file.baseHub.cached || file.hub || !verifying || file.expected.length === 0) return undefined;
  const local = await identify(file.payloadPath);
  return local && `file:${local.size}:${local.mtimeNs}:${local.ino}`;
}

export interface OutputTemp {
  temp: TempFile;
  /** Bytes of the output already written by an interrupted run (0: from the start). */
  kept: number;
  /** Set while a file fetched from the Hub is written: keeps it resumable. */
  checkpoints: Checkpoints | undefined;
}

/** The temporary output for a file: the kept one of an interrupted run when it can be resumed, else a new one. */
export async function openOutputTemp(file: FilePlan, ctx: ResumeContext, options: { direct: boolean; mayResume: boolean }): Promise<OutputTemp> {
  const { outputDir } = ctx;
  const tempName = basename(file.outputPath);
  const payload = await payloadIdentity(file, ctx.verifying);
  const why = payload ? whyNotResumable(file) : undefined;
  const earlier = ctx.resume.partialOf(file.name);
  let temp: TempFile | undefined;
  let kept = 0;
  if (earlier && payload && !why && options.mayResume) {
    const entry = await ctx.resume.resumablePartial(file.name, { payload, payloadSize: file.payloadSize, base: file.basePath, tempName });
    temp = entry && (await reopenTemp(outputDir, tempName, { ino: entry.temp.ino, bytes: entry.bytes }, options));
    if (temp) kept = entry!.bytes;
  }
  if (earlier && !temp) {
    const reason = why ?? (payload ? 'the kept part no longer matches its inputs' : 'nothing of it is fetched from the Hub now');
    if (earlier.bytes > 0 || why) ctx.notify({ type: 'note', message: `${file.name}: an earlier run was interrupted in this file; restarting from byte 0 (${reason})` });
    await ctx.resume.forgetPartial(file.name);
  }
  temp ??= await createTemp(outputDir, tempName, options);
  if (kept > 0) {
    ctx.notify({ type: 'note', message: `${file.name}: resuming at byte ${kept} of ${file.payloadSize}; the ${kept} bytes kept are hashed again from disk` });
  }
  if (!payload) return { temp, kept, checkpoints: undefined };
  const { ino } = await temp.handle.stat({ bigint: true });
  const entry: PartialEntry = {
    payload,
    payloadSize: file.payloadSize,
    base: (file.basePath ? await identify(file.basePath) : undefined) ?? null,
    temp: { name: tempName, ino: ino.toString() },
    bytes: kept,
    resumable: why === undefined,
  };
  // Not resumable: recorded once, so that the next run can say why it starts the file again.
  if (why) await ctx.resume.recordPartial(file.name, entry);
  const checkpoints = why ? undefined : new Checkpoints(temp, (bytes) => ctx.resume.recordPartial(file.name, { ...entry, bytes }), kept);
  return { temp, kept, checkpoints };
}

/**
 * A file with no output of its own (a shard that goes into the GGUF, which takes each shard whole): what an
 * interrupted run kept of it, writing it as a file, is dropped.
 */
export async function dropKeptOutput(file: FilePlan, ctx: ResumeContext): Promise<void> {
  const earlier = ctx.resume.partialOf(file.name);
  if (!earlier) return;
  if (earlier.bytes > 0) ctx.notify({ type: 'note', message: `${file.name}: an earlier run was interrupted in this file; restarting from byte 0 (it goes into the GGUF, which takes each shard whole)` });
  await unlink(join(partialDir(ctx.outputDir), basename(file.outputPath))).catch(() => undefined);
  await ctx.resume.forgetPartial(file.name, { save: true });
}

/** An interrupted file: its whole prefix is recorded and its temporary output kept, to resume next time. */
export async function keepForResume(out: OutputTemp): Promise<boolean> {
  if (!out.checkpoints) return false;
  await out.checkpoints.stop({ final: true });
  await keepTemp(out.temp);
  return true;
}

/**
 * A file that finished (committed or refused): nothing of it is to be resumed. The state is saved
 * by the commit's record, or by the caller when the file is refused (true: there is a change to
 * save): one write of the state per file, not two.
 */
export async function finishedWith(file: FilePlan, out: OutputTemp, ctx: ResumeContext): Promise<boolean> {
  await out.checkpoints?.stop({ final: false });
  out.checkpoints = undefined;
  return ctx.resume.forgetPartial(file.name);
}
