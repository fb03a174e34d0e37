/**
 * A legacy tar checkpoint (torch < 0.4) walked as it streams by, the way torch 1.13 loads one:
 * tarfile lists the members (headers read as tarfile reads them, see tar-header.ts), then
 * `storages`, `tensors` and `pickle` are unpickled in that order (see tar-members.ts). A TarError
 * anywhere sends torch.load to `pickle.load` from byte 0, so the file's first bytes are judged as
 * a pickle too. Whatever tarfile could read otherwise than this walk (links, sparse or GNU members,
 * global or chained pax headers, a member twice, a cut archive) is a problem: the file is refused.
 */
import { scanPickles } from './checkpoint.js';
import { PickleError, type GlobalUse, type PickleWalk } from './pickle.js';
import { MAX_PAX_BYTES, paxRecords, TAR_BLOCK, tarBlock, tarPadded, type TarHeader } from './tar-header.js';
import { MemberStream, TORCH_TAR_MEMBERS, type TorchTarMember } from './tar-members.js';

/** Regular files to tarfile (isreg()); GNU sparse files ('S') are refused. */
const REGULAR = new Set(['0', '\0', '7']);

/**
 * Opcodes that fail on an empty stack or memo before they import anything: a file starting with one
 * unpickles nothing from byte 0. A tar starts with a member's name; torch's members and the pax
 * header name ("././@PaxHeader") all start with one of these.
 */
const FAILS_FIRST = new Set(Buffer.from('.012aebdsutloprqRQghj\x81\x85\x86\x87\x90\x91\x92\x93\x94', 'latin1'));

export interface TarScan {
  walks: PickleWalk[];
  /** Every global named: the members' pickles (broken ones too) and what byte 0 would unpickle. */
  globals: GlobalUse[];
  /** Why torch could read the file otherwise than the walk did, or fail in it. */
  problem: string | undefined;
  bytes: number;
}

type State = 'header' | 'pax' | 'data' | 'pad' | 'end';

export class LegacyTarWalk {
  private state: State = 'header';
  /** A header block or a pax header's data being gathered. */
  private gathered: Buffer = Buffer.alloc(0);
  private want = TAR_BLOCK;
  /** Data bytes (or padding) left of the current member. */
  private left = 0;
  private pad = 0;
  private member: MemberStream | undefined;
  private pax: Map<string, string> | undefined;
  private readonly members = new Map<TorchTarMember, MemberStream>();
  private problem: string | undefined;
  private first: Buffer | undefined;
  private bytes = 0;

  feed(chunk: Uint8Array): void {
    if (!this.first) this.first = Buffer.from(chunk.subarray(0, TAR_BLOCK));
    else if (this.first.length < TAR_BLOCK) this.first = Buffer.concat([this.first, chunk.subarray(0, TAR_BLOCK - this.first.length)]);
    this.bytes += chunk.length;
    let at = 0;
    while (at < chunk.length && this.state !== 'end') {
      if (this.state === 'header' || this.state === 'pax') {
        const n = Math.min(this.want - this.gathered.length, chunk.length - at);
        this.gathered = Buffer.concat([this.gathered, chunk.subarray(at, at + n)]);
        at += n;
        if (this.gathered.length < this.want) continue;
        const block = this.gathered;
        this.gathered = Buffer.alloc(0);
        if (this.state === 'header') this.header(block);
        else this.paxData(block);
      } else if (this.state === 'data') {
        const n = Math.min(this.left, chunk.length - at);
        this.member?.feed(chunk.subarray(at, at + n));
        at += n;
        this.left -= n;
        if (this.left === 0) this.endData();
      } else {
        const n = Math.min(this.pad, chunk.length - at);
        at += n;
        this.pad -= n;
        if (this.pad === 0) this.next('header', TAR_BLOCK);
      }
    }
  }

  finish(): TarScan {
    // tarfile stops quietly at a short or missing header; anywhere else the archive is cut.
    if (this.state === 'pax' || this.state === 'data' || this.state === 'pad' || (this.state === 'header' && this.pax)) this.refuse('the archive ends inside a member');
    this.member?.end();
    for (const name of TORCH_TAR_MEMBERS) if (!this.members.has(name)) this.refuse(`it has no "${name}" member, which torch reads`);
    const streams = TORCH_TAR_MEMBERS.map((n) => this.members.get(n)).filter((m) => m !== undefined);
    const fromStart = this.fromByteZero();
    const problem = this.problem ?? streams.find((m) => m.problem)?.problem ?? fromStart.problem;
    return {
      walks: streams.flatMap((m) => m.walks),
      globals: [...fromStart.globals, ...streams.flatMap((m) => m.globals)],
      problem,
      bytes: this.bytes,
    };
  }

  private header(block: Buffer): void {
    const read = tarBlock(block);
    if (read.kind !== 'header') {
      // After a pax header tarfile needs a member (SubsequentHeaderError); elsewhere it stops here.
      if (this.pax) this.refuse('a pax header is followed by no member header');
      this.next('end', 0);
      return;
    }
    const h = read.header;
    if (h.type === 'x') {
      if (this.pax) return this.refuse('a pax header is followed by another');
      if (!Number.isSafeInteger(h.size) || h.size < 0 || h.size > MAX_PAX_BYTES) return this.refuse(`a pax header claims ${h.size} bytes`);
      this.left = h.size;
      this.next('pax', tarPadded(h.size));
      if (this.want === 0) this.paxData(Buffer.alloc(0));
      return;
    }
    this.startMember(h);
  }

  private paxData(padded: Buffer): void {
    const records = paxRecords(padded, this.left);
    if (typeof records === 'string') return this.refuse(records);
    this.pax = records;
    this.next('header', TAR_BLOCK);
  }

  private startMember(h: TarHeader): void {
    let { name, size } = h;
    const pax = this.pax;
    this.pax = undefined;
    if (pax?.has('path')) name = pax.get('path')!.replace(/\/+$/, '');
    if (pax?.has('size')) {
      const text = pax.get('size')!;
      if (!/^[0-9]+$/.test(text)) return this.refuse(`a pax header gives the size ${JSON.stringify(text.slice(0, 20))}`);
      size = Number(text);
    }
    if (h.type === '5') name = name.replace(/\/+$/, '');
    if (!REGULAR.has(h.type) && h.type !== '5') return this.refuse(`it holds a member of tar type ${JSON.stringify(h.type)} (${JSON.stringify(name.slice(0, 60))}), which this check does not read`);
    const torchName = TORCH_TAR_MEMBERS.find((n) => n === name);
    if (torchName && this.members.has(torchName)) return this.refuse(`it holds "${name}" twice`);
    if (h.type === '5') {
      // tarfile reads no data after a directory's header, whatever size it states.
      if (torchName) return this.refuse(`its "${name}" member is a directory`);
      this.next('header', TAR_BLOCK);
      return;
    }
    if (!Number.isSafeInteger(size) || size < 0) return this.refuse(`its member ${JSON.stringify(name.slice(0, 60))} claims ${size} bytes`);
    this.member = torchName ? new MemberStream(torchName) : undefined;
    if (torchName) this.members.set(torchName, this.member!);
    this.left = size;
    this.pad = tarPadded(size) - size;
    this.state = 'data';
    if (size === 0) this.endData();
  }

  private endData(): void {
    this.member?.end();
    this.member = undefined;
    if (this.pad > 0) this.state = 'pad';
    else this.next('header', TAR_BLOCK);
  }

  private next(state: State, want: number): void {
    this.state = state;
    this.want = want;
  }

  private refuse(problem: string): void {
    this.problem ??= problem;
    this.member?.end();
    this.member = undefined;
    this.next('end', 0);
  }

  /** What `pickle.load` from byte 0 would do, where a TarError sends torch.load. */
  private fromByteZero(): { globals: GlobalUse[]; problem?: string } {
    const first = this.first ?? Buffer.alloc(0);
    if (first.length === 0 || FAILS_FIRST.has(first[0]!)) return { globals: [] };
    const problem = 'its first bytes are a tar header and a pickle too, which torch unpickles when tarfile fails';
    try {
      return { globals: scanPickles(first).walks.flatMap((w) => w.globals), problem };
    } catch (err) {
      if (!(err instanceof PickleError)) throw err;
      return { globals: err.globalsBefore, problem };
    }
  }
}
