/**
 * Legacy tar checkpoints read as CPython 3.11's tarfile and torch 1.13's _legacy_load read them.
 * The whole files come from fixtures/make-hostile.py (torch loaded each); the variants here are
 * built byte by byte, each a way tarfile could list other members than a careless reader.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LegacyTarWalk } from '../../src/release/tar-checkpoint.js';
import { paxRecords, tarBlock, tarNumber } from '../../src/release/tar-header.js';
import { PickleCheck } from '../../src/verify/pickle-check.js';
import { TORCH } from '../support/helpers.js';

const BENIGN = readFileSync(join(TORCH, 'hostile', 'benign', 'legacy-tar.bin'));

/** A ustar header block, its checksum computed as tarfile writes it. */
function header(name: string, size: number, type = '0', prefix = ''): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 'latin1');
  b.write('0000644\0', 100, 'latin1');
  b.write('0000000\0', 108, 'latin1');
  b.write('0000000\0', 116, 'latin1');
  b.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  b.write('00000000000\0', 136, 'latin1');
  b.write(type, 156, 'latin1');
  b.write('ustar\x0000', 257, 'latin1');
  b.write(prefix, 345, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

const pad = (data: Buffer): Buffer => Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);

function pax(records: Record<string, string>): Buffer {
  const text = Object.entries(records).map(([k, v]) => {
    const body = ` ${k}=${v}\n`;
    let n = body.length + 1;
    while (`${n}${body}`.length !== n) n++;
    return `${n}${body}`;
  }).join('');
  return Buffer.concat([header('././@PaxHeader', text.length, 'x'), pad(Buffer.from(text, 'latin1'))]);
}

/** The members of the benign fixture, as tarfile lists them (so variants keep torch's real bytes). */
function benignMembers(): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (let at = 0; at + 512 <= BENIGN.length;) {
    const read = tarBlock(BENIGN.subarray(at, at + 512));
    if (read.kind !== 'header') break;
    const data = BENIGN.subarray(at + 512, at + 512 + read.header.size);
    if (read.header.type !== 'x') out.set(read.header.name, Buffer.from(data));
    at += 512 + Math.ceil(read.header.size / 512) * 512;
  }
  return out;
}
const MEMBERS = benignMembers();

const member = (name: string, data: Buffer, type = '0'): Buffer => Buffer.concat([header(name, data.length, type), pad(data)]);
const tar = (...parts: Buffer[]): Buffer => Buffer.concat([...parts, Buffer.alloc(1024)]);
const torchMembers = (...skip: string[]): Buffer[] => [...MEMBERS].filter(([n]) => !skip.includes(n)).map(([n, d]) => member(n, d));

function walk(bytes: Buffer, step = bytes.length) {
  const w = new LegacyTarWalk();
  for (let i = 0; i < bytes.length; i += step) w.feed(bytes.subarray(i, i + step));
  return w.finish();
}

function verdict(bytes: Buffer) {
  const c = new PickleCheck('pytorch_model.bin', bytes.length);
  c.feed(bytes);
  return c.finish();
}

describe('tarNumber (tarfile\'s nti)', () => {
  const f = (s: string) => Buffer.from(s.padEnd(8, '\0'), 'latin1');
  it('reads octal text as int(x.strip() or "0", 8) does, and refuses what int() refuses', () => {
    expect(tarNumber(f('0000644'))).toBe(0o644);
    expect(tarNumber(f(' 17 '))).toBe(15);
    expect(tarNumber(f('0o17'))).toBe(15);
    expect(tarNumber(f('-1_7'))).toBe(-15);
    expect(tarNumber(f(''))).toBe(0);
    expect(tarNumber(f('\t\x1c'))).toBe(0);
    for (const bad of ['_7', '7_', '1__7', '8', '0x7', '7 7', '0o']) expect(tarNumber(f(bad)), bad).toBeUndefined();
    expect(tarNumber(Buffer.from([0x37, 0xb7, 0, 0, 0, 0, 0, 0]))).toBeUndefined();
  });
  it('reads GNU base-256 fields, positive (0x80) and negative (0xff)', () => {
    expect(tarNumber(Buffer.from([0x80, 0, 0, 0, 0, 0, 1, 2]))).toBe(258);
    expect(tarNumber(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]))).toBe(-2);
  });
  it('a header with a field nti() cannot read is no header; an all-zero block ends the archive', () => {
    const h = header('pickle', 3);
    expect(tarBlock(h).kind).toBe('header');
    expect(tarBlock(Buffer.alloc(512)).kind).toBe('end');
    const bad = Buffer.from(h);
    bad.write('9', 100, 'latin1');
    expect(tarBlock(bad).kind).toBe('invalid');
  });
  it('joins the ustar prefix and turns a "\\0" type ending in / into a directory, as frombuf does', () => {
    expect(tarBlock(header('b', 0, '0', 'a')).kind === 'header' && (tarBlock(header('b', 0, '0', 'a')) as { header: { name: string } }).header.name).toBe('a/b');
    const dir = tarBlock(header('pickle/', 0, '\0'));
    expect(dir).toEqual({ kind: 'header', header: { name: 'pickle', type: '5', size: 0 } });
  });
});

describe('paxRecords', () => {
  const padded = (text: string) => pad(Buffer.from(text, 'latin1'));
  it('reads records that tile the header exactly', () => {
    const text = '12 path=abc\n';
    expect(paxRecords(padded(text), text.length)).toEqual(new Map([['path', 'abc']]));
  });
  it('refuses what tarfile might read otherwise: a wrong length, bytes in the padding, a charset, sparse keys', () => {
    expect(paxRecords(padded('13 path=abc\n'), 12)).toMatch(/malformed/);
    expect(paxRecords(padded('12 path=abc\n13 path=evil\n'), 12)).toMatch(/after its records/);
    expect(paxRecords(padded('21 hdrcharset=BINARY\n'), 21)).toMatch(/character set/);
    expect(paxRecords(padded('22 GNU.sparse.size=10\n'), 22)).toMatch(/sparse/);
  });
});

describe('LegacyTarWalk', () => {
  it('walks the six pickles of the benign fixture the same way whatever the chunk size', () => {
    for (const step of [BENIGN.length, 1, 7, 511, 513, 4096]) {
      const scan = walk(BENIGN, step);
      expect(scan.problem, String(step)).toBeUndefined();
      expect(scan.walks.length).toBe(6);
      expect(scan.globals.map((g) => g.ref).sort()).toEqual(['collections.OrderedDict', 'torch.FloatStorage', 'torch.FloatTensor']);
    }
    expect(verdict(BENIGN).status).toBe('safe');
  });

  it('takes a member rebuilt here from torch\'s bytes (no pax headers) as the fixture', () => {
    expect(walk(tar(...torchMembers())).problem).toBeUndefined();
  });

  const cases: [string, Buffer, RegExp][] = [
    ['a missing member', tar(...torchMembers('tensors')), /no "tensors" member/],
    ['a member twice', tar(...torchMembers(), member('storages', MEMBERS.get('storages')!)), /holds "storages" twice/],
    ['a symlink named pickle', tar(...torchMembers('pickle'), member('pickle', Buffer.alloc(0), '2')), /tar type "2"/],
    ['a GNU long name', tar(member('././@LongLink', Buffer.from('pickle\0'), 'L'), ...torchMembers()), /tar type "L"/],
    ['a global pax header', tar(Buffer.concat([header('pax_global_header', 0, 'g')]), ...torchMembers()), /tar type "g"/],
    ['two pax headers in a row', tar(pax({ mtime: '1' }), pax({ path: 'x' }), ...torchMembers()), /followed by another/],
    ['a pax header before the end', tar(...torchMembers(), pax({ path: 'x' })), /followed by no member/],
    ['a pax size that int() reads but this check does not', tar(pax({ size: ' 12' }), ...torchMembers()), /gives the size/],
    ['a directory named pickle', tar(...torchMembers('pickle'), header('pickle', 0, '5')), /"pickle" member is a directory/],
    ['an archive cut inside a member', Buffer.concat(torchMembers()).subarray(0, 600), /ends inside a member/],
    ['a storage count that is no integer', tar(member('storages', Buffer.from('\x80\x02X\x01\x00\x00\x00a.', 'latin1')), ...torchMembers('storages')), /storage count is not a plain integer/],
    ['a member shorter than torch reads', tar(member('storages', MEMBERS.get('storages')!.subarray(0, 60)), ...torchMembers('storages')), /"storages" member (ends before|.*cut short)/],
  ];
  it.each(cases)('refuses %s', (_what, bytes, why) => {
    const scan = walk(bytes);
    expect(scan.problem).toMatch(why);
    const v = verdict(bytes);
    expect(v.status).toBe('invalid');
    expect(v.status === 'invalid' && v.reason).toMatch(/^it is a legacy tar checkpoint \(torch < 0\.4\): /);
  });

  it('a pax path makes a member torch\'s, and its pickle is judged', () => {
    const evil = Buffer.from('\x80\x02cos\nsystem\nq\x00.', 'latin1');
    const bytes = tar(...torchMembers('pickle'), pax({ path: 'pickle' }), member('not-pickle', evil));
    expect(verdict(bytes)).toEqual({ status: 'unsafe', globals: ['os.system (GLOBAL)'] });
  });

  it('a pax size decides where the member ends, as tarfile has it', () => {
    const evil = Buffer.from('\x80\x02cos\nsystem\nq\x00.', 'latin1');
    const object = MEMBERS.get('pickle')!;
    // The header says the benign pickle's length; the pax size takes in the evil one after it.
    const data = pad(Buffer.concat([evil]));
    const bytes = tar(...torchMembers('pickle'), pax({ size: String(evil.length) }), header('pickle', object.length), data);
    expect(verdict(bytes)).toEqual({ status: 'unsafe', globals: ['os.system (GLOBAL)'] });
  });

  it('a first member whose name starts a pickle is judged as one (torch unpickles byte 0 after a TarError)', () => {
    const bytes = tar(member('(lp0\n.', Buffer.from('x')), ...torchMembers());
    expect(walk(bytes).problem).toMatch(/a tar header and a pickle too/);
    expect(walk(BENIGN).problem).toBeUndefined();
  });
});
