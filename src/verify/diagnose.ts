/**
 * Naming the cause of a failed file from evidence that was actually checked. Facts (sizes, line
 * endings, structure) are reported as facts; the cause comes from the deduction table below, fed by
 * published digests of the XOR file and of the base file, or from a proof (a CRLF rewrite is proven
 * when undoing it gives the published digest).
 *
 * | XOR file \ base | differs | intact   | unknown  |
 * |-----------------|---------|----------|----------|
 * | differs         | xor-file| xor-file | xor-file |
 * | intact          | base    | manifest | base     |
 * | unknown         | base    | xor-file | unknown  |
 */
import { openInput, readInput } from '../input-files.js';
import type { Pipeline } from '../codec/pipeline.js';
import { readHead } from '../codec/sources.js';
import { rebuiltText } from '../rebuild/rebuild-input.js';
import type { FilePlan } from '../plan/plan.js';
import type { Cause, Diagnosis, Digests, Integrity } from '../types.js';
import * as text from './diagnosis-text.js';
import type { BaseDigestList, DigestList } from '../release/expectations.js';
import { bytesMatch } from './digests.js';
import { checkPayload, judgeBaseDigests, publishedPayload } from './evidence.js';
import { hashFile, type HashOptions } from './hash-file.js';
import { checkMetaFiles } from './meta-checklist.js';
import { isTruncatedZip, lacksBaseStructure, ZIP_TAIL_BYTES } from '../release/file-structure.js';

export function deduceCause(payload: Integrity, base: Integrity): Cause {
  if (payload === 'differs') return 'xor-file';
  if (payload === 'intact') return base === 'intact' ? 'manifest' : 'base';
  if (base === 'differs') return 'base';
  if (base === 'intact') return 'xor-file';
  return 'unknown';
}


export interface DiagnoseContext {
  pipeline: Pipeline;
  payloadList: DigestList | undefined;
  baseList: BaseDigestList | undefined;
  /** Base digests already computed (--check-base), so the base is not read again. */
  baseDigests?: Digests | undefined;
  /** The decoded file's first bytes, when they were seen. */
  decodedHead?: Buffer | undefined;
  /** The XOR file's integrity, when it was already checked (a Hub payload, hashed as it arrived). */
  knownPayload?: KnownPayload | undefined;
  /** A Hub base whose bytes, received whole, did not match its listing's SHA-256. */
  baseReceivedCorrupt?: boolean | undefined;
  /** What the records' CRC-32s said of the decoded file's tensors (a torch zip). */
  tensorFacts?: Diagnosis[] | undefined;
  /** Set once a base file proved not to be the published one: large bases are then not re-hashed. */
  evidence: { badBaseSeen: boolean };
  hash: HashOptions;
}

export interface KnownPayload {
  integrity: Integrity;
  source: string;
}

export interface Finding {
  cause: Cause;
  diagnosis: Diagnosis[];
}

/** A base file larger than this is hashed for a diagnosis only while no other base proved wrong. */
const ALWAYS_HASH_BASE_BYTES = 64 << 20;
/** JSON files up to this size are re-hashed with LF line endings to prove a CRLF rewrite. */
const CRLF_PROOF_BYTES = 16 << 20;

/** Whether `bytes` give the published digest, by the same rule as every other match: the strongest algorithm listed decides. */
function matchesPublished(bytes: Buffer, file: FilePlan): Promise<boolean> {
  return bytesMatch(file.expected, bytes);
}

function xorPadded(payload: Buffer, base: Buffer): Buffer {
  const out = Buffer.from(payload);
  for (let i = 0; i < Math.min(out.length, base.length); i++) out[i]! ^= base[i]!;
  return out;
}

const CRLF = Buffer.from('\r\n');
function toLf(bytes: Buffer): Buffer {
  return Buffer.from(bytes.toString('latin1').replaceAll('\r\n', '\n'), 'latin1');
}

/** For a JSON file: CRLF facts, and the cause when undoing the rewrite gives the published digest. */
async function lineEndings(file: FilePlan): Promise<{ facts: Diagnosis[]; proven?: Finding }> {
  if (!file.name.toLowerCase().endsWith('.json') || file.action === 'xor-gzip' || file.payloadSize > CRLF_PROOF_BYTES) return { facts: [] };
  const read = (path: string) => readInput(path, CRLF_PROOF_BYTES).then((r) => r.bytes, () => undefined);
  const payload = await read(file.payloadPath);
  const base = file.basePath && (file.baseSize ?? 0) <= CRLF_PROOF_BYTES ? await read(file.basePath) : undefined;
  if (!payload) return { facts: [] };
  const payloadCrlf = payload.includes(CRLF);
  const baseCrlf = base?.includes(CRLF) === true;
  const facts: Diagnosis[] = [];
  if (payloadCrlf) facts.push(text.crlfFact(file.payloadPath));
  if (baseCrlf) facts.push(text.crlfFact(file.basePath!));
  if (file.action === 'copy') {
    if (payloadCrlf && await matchesPublished(toLf(payload), file)) return { facts, proven: { cause: 'xor-file', diagnosis: [text.crlfProven(file.payloadPath, 'xor-file')] } };
    return { facts };
  }
  if (!base) return { facts };
  if (baseCrlf && await matchesPublished(xorPadded(payload, toLf(base)), file)) {
    return { facts, proven: { cause: 'base', diagnosis: [text.crlfProven(file.basePath!, 'base')] } };
  }
  if (payloadCrlf && await matchesPublished(xorPadded(toLf(payload), base), file)) {
    return { facts, proven: { cause: 'xor-file', diagnosis: [text.crlfProven(file.payloadPath, 'xor-file')] } };
  }
  return { facts };
}

/** Decoded bytes that lack the structure their base has: a fact about this payload and base together. */
async function structureFacts(file: FilePlan, decodedHead: Buffer | undefined): Promise<Diagnosis[]> {
  if (!decodedHead || !file.basePath || file.baseSize === undefined) return [];
  const baseHead = await readHead(file.basePath, Math.min(decodedHead.length, 1 << 20)).catch(() => undefined);
  if (!baseHead) return [];
  const size = file.action === 'xor-gzip' ? undefined : file.payloadSize;
  const problem = lacksBaseStructure(file.name, { head: decodedHead, size }, { head: baseHead, size: file.baseSize });
  return problem ? [text.structureFact(file.name, problem)] : [];
}

/** Reads a file's last bytes (for the zip end record). */
async function readTail(path: string, size: number): Promise<Buffer> {
  const length = Math.min(size, ZIP_TAIL_BYTES);
  const { handle } = await openInput(path);
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buf, 0, length, size - length);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

async function baseIntegrity(file: FilePlan, ctx: DiagnoseContext): Promise<{ integrity: Integrity; lines: Diagnosis[] }> {
  const judged = await publishedBase(file, ctx);
  const rebuilt = file.baseRebuild?.kind === 'shard' ? file.baseRebuild : undefined;
  if (!rebuilt || judged.integrity === 'intact') return judged;
  // Rebuilt from Meta's files: their checklist names a damaged one.
  const originals = rebuilt.folder.local === undefined ? [] : await checkMetaFiles(ctx.pipeline, rebuilt.folder.local, rebuilt.origin, ctx.hash);
  const damaged = originals.some((d) => d.code === 'base-not-published');
  return { integrity: damaged ? 'differs' : judged.integrity, lines: [...judged.lines, ...originals] };
}

async function publishedBase(file: FilePlan, ctx: DiagnoseContext): Promise<{ integrity: Integrity; lines: Diagnosis[] }> {
  if (file.action === 'copy') return { integrity: 'intact', lines: [] };
  if (file.basePath && file.baseSize !== undefined) {
    const [head, tail] = await Promise.all([readHead(file.basePath, 4), readTail(file.basePath, file.baseSize)]).catch(() => [undefined, undefined]);
    if (head && tail && isTruncatedZip(head, tail)) return { integrity: 'differs', lines: [text.truncatedBase(file.basePath)] };
  }
  if (ctx.baseReceivedCorrupt && file.basePath) return { integrity: 'differs', lines: [text.baseReceivedCorrupt(file.basePath)] };
  const entries = ctx.baseList?.byName.get(file.name);
  if (!file.basePath || !entries || entries.length === 0) return { integrity: 'unknown', lines: [] };
  const algorithms = [...new Set(entries.map((e) => e.algorithm))];
  let digests = ctx.baseDigests;
  // A base on the Hub is not fetched again to be hashed: its listing's SHA-256 is what the Hub serves.
  const listed = file.baseHub?.file.lfsSha256;
  const complete = digests !== undefined && algorithms.every((a) => digests![a] !== undefined);
  if (file.baseHub && !complete) {
    if (!listed || !algorithms.includes('sha256')) return { integrity: 'unknown', lines: [text.baseNotCheckedOnHub(file.basePath, ctx.baseList!.label)] };
    digests = { sha256: listed };
  } else if (!complete) {
    if (ctx.evidence.badBaseSeen && (file.baseSize ?? 0) > ALWAYS_HASH_BASE_BYTES) {
      return { integrity: 'unknown', lines: [text.baseNotChecked(file.basePath)] };
    }
    // A rebuilt base is made again to be hashed: it is no file.
    const input = file.baseRebuild ? await (await import('../rebuild/rebuild-plan.js')).openRebuilt(file.basePath, file.baseRebuild) : file.basePath;
    digests = (await hashFile(ctx.pipeline, input, algorithms, ctx.hash)).digests;
  }
  const integrity = judgeBaseDigests(entries, digests ?? {});
  if (integrity === 'differs') ctx.evidence.badBaseSeen = true;
  const shown = file.baseRebuild ? rebuiltText(file.name, file.baseRebuild) : file.basePath;
  const line = integrity === 'intact' ? text.baseIsPublished(shown, ctx.baseList!.label) : text.baseNotPublished(shown, ctx.baseList!.label);
  return { integrity, lines: [line] };
}

export async function diagnoseFailure(file: FilePlan, ctx: DiagnoseContext): Promise<Finding> {
  const facts: Diagnosis[] = [...(await structureFacts(file, ctx.decodedHead)), ...(ctx.tensorFacts ?? [])];
  const crlf = await lineEndings(file);
  facts.push(...crlf.facts);
  if (crlf.proven) return { cause: crlf.proven.cause, diagnosis: [...facts, ...crlf.proven.diagnosis] };

  const published = ctx.knownPayload ? undefined : await publishedPayload(file.payloadPath, file.name, ctx.payloadList);
  const payload = ctx.knownPayload?.integrity ?? (await checkPayload(ctx.pipeline, file.payloadPath, published, ctx.hash));
  const base = await baseIntegrity(file, ctx);
  if (file.action === 'xor' && file.baseSize !== undefined && file.baseSize !== file.payloadSize) {
    facts.push(text.sizesDiffer(file.basePath!, file.baseSize, file.payloadSize));
  }
  if (published?.size !== undefined && published.size !== file.payloadSize) {
    facts.push(text.payloadSizeDiffers(file.payloadPath, file.payloadSize, published.size, published.source));
  }
  const evidenceSource = ctx.knownPayload?.source ?? published?.source;
  const payloadLine = evidenceSource ? text.payloadEvidence(file.payloadPath, payload, evidenceSource) : undefined;
  const cause = deduceCause(payload, base.integrity);
  return {
    cause,
    diagnosis: [
      ...facts,
      ...(payloadLine ? [payloadLine] : []),
      ...base.lines,
      text.causeAndFix(file, cause, ctx.baseList, base.lines.some((d) => d.code === 'base-truncated')),
    ],
  };
}

/** With --check-base: the base file's verdict, from the base digest list when it names the file. */
export function baseVerdict(name: string, digests: Digests, baseList: DigestList | undefined): Integrity {
  return judgeBaseDigests(baseList?.byName.get(name), digests);
}
