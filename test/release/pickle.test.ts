import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { checkpointFormat, scanPickles, scanZipHead, unsafeGlobals } from '../../src/release/checkpoint.js';
import { PickleError, PickleIncomplete, walkPickle } from '../../src/release/pickle.js';
import { PickleCheck } from '../../src/verify/pickle-check.js';
import { HAS_PYTHON, TORCH } from '../support/helpers.js';

/** Pickles of plain data made by CPython's own pickler, at every protocol. */
function pythonPickles(): { protocol: number; bytes: Buffer }[] {
  const script = `
import pickle, sys, collections
data = {"s": "x", "i": [1, -2, 300, 70000, 2**40, -2**70], "f": 1.5, "b": b"by", "t": (1, (2, 3)), "n": None,
        "yes": True, "set": {1, 2}, "fs": frozenset([3]), "od": collections.OrderedDict(a=1), "ba": bytearray(b"z")}
for p in range(0, 6):
    sys.stdout.write(pickle.dumps(data, protocol=p).hex() + "\\n")
`;
  return execFileSync('python3', ['-c', script], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((hex, protocol) => ({ protocol, bytes: Buffer.from(hex, 'hex') }));
}

function check(bytes: Buffer, name = 'pytorch_model.bin', step = 7) {
  const c = new PickleCheck(name);
  for (let i = 0; i < bytes.length; i += step) c.feed(bytes.subarray(i, i + step));
  return c.finish();
}

describe('walkPickle', () => {
  it.skipIf(!HAS_PYTHON)('walks CPython pickles of every protocol (0-5) to their STOP, naming only the globals they use', () => {
    for (const { protocol, bytes } of pythonPickles()) {
      const walk = walkPickle(bytes);
      expect(walk.end, `protocol ${protocol}`).toBe(bytes.length);
      const refs = walk.globals.map((g) => g.ref).filter((r) => r !== 'collections.OrderedDict');
      // Old protocols spell sets, bytes and bytearrays as calls of builtins: named, never run.
      for (const r of refs) expect(r, `protocol ${protocol}`).toMatch(/^(builtins|__builtin__|_codecs|copy_reg|copyreg)\./);
    }
  });

  it('names a global taken from the stack (STACK_GLOBAL) and what applies it', () => {
    const bytes = readFileSync(join(TORCH, 'unsafe', 'stack-global-eval.bin'));
    const scan = scanZipHead(bytes)!;
    expect(unsafeGlobals(scan)).toEqual(['builtins.eval (STACK_GLOBAL, REDUCE)']);
  });

  it('says "incomplete" for a pickle cut short, and refuses malformed ones', () => {
    expect(() => walkPickle(Buffer.from([0x80, 0x02, 0x58, 0x10, 0, 0, 0, 0x61]))).toThrow(PickleIncomplete);
    expect(() => walkPickle(Buffer.from([0x80, 0x02, 0xff]))).toThrow(/unknown pickle opcode 0xff at byte 2/);
    expect(() => walkPickle(Buffer.from([0x80, 0x02, 0x2e]))).toThrow(PickleError);
    expect(() => walkPickle(Buffer.from([0x80, 0x02, 0x68, 0x05, 0x2e]))).toThrow(/memo entry never stored/);
  });
});

describe('the pickle check on real torch.save checkpoints', () => {
  it.each([
    ['llama-base', 'pytorch_model-00001-of-00003.bin', 'zip'],
    ['llama-base-legacy', 'pytorch_model-00001-of-00003.bin', 'legacy'],
    ['dtypes', 'pytorch_model-00001-of-00002.bin', 'zip'],
  ])('%s/%s (%s) is safe, fed in small pieces', (dir, name, format) => {
    const bytes = readFileSync(join(TORCH, dir, name));
    expect(checkpointFormat(bytes)).toBe(format);
    expect(check(bytes).status).toBe('safe');
  });

  it.each([
    ['posix-system.bin', 'posix.system (GLOBAL, REDUCE)'],
    ['os-system.bin', 'os.system (GLOBAL, REDUCE)'],
    ['stack-global-eval.bin', 'builtins.eval (STACK_GLOBAL, REDUCE)'],
    ['unknown-class.bin', 'mypackage.models.Thing (GLOBAL, REDUCE)'],
  ])('unsafe/%s is unsafe: %s', (file, named) => {
    const v = check(readFileSync(join(TORCH, 'unsafe', file)));
    expect(v).toMatchObject({ status: 'unsafe', globals: [named] });
  });

  it('judges a first chunk that holds all of data.pkl where it lies, keeping no copy of it', () => {
    const bytes = readFileSync(join(TORCH, 'llama-base', 'pytorch_model-00001-of-00003.bin'));
    const concat = vi.spyOn(Buffer, 'concat');
    try {
      const c = new PickleCheck('pytorch_model.bin');
      c.feed(bytes.subarray(0, 1 << 20));
      // The pipeline reuses its buffer: the verdict was taken before, and holds no bytes of it.
      const verdict = c.finish();
      expect(verdict.status).toBe('safe');
      expect(concat).not.toHaveBeenCalled();
    } finally {
      concat.mockRestore();
    }
  });

  it.each([
    ['llama-base', 'pytorch_model-00001-of-00003.bin', 'safe'],
    ['unsafe', 'os-system.bin', 'unsafe'],
  ])('%s/%s fed through one reused buffer, overwritten after every piece, is still %s', (dir, name, status) => {
    const bytes = readFileSync(join(TORCH, dir, name));
    const c = new PickleCheck('pytorch_model.bin');
    const slot = Buffer.alloc(61);
    for (let i = 0; i < bytes.length; i += slot.length) {
      const n = bytes.copy(slot, 0, i, i + slot.length);
      c.feed(slot.subarray(0, n));
      slot.fill(0xff);
    }
    expect(c.finish().status).toBe(status);
  });

  it('a torch zip whose data.pkl cannot be read is invalid with the reason, never a crash', () => {
    const good = readFileSync(join(TORCH, 'unsafe', 'os-system.bin'));
    const bad = Buffer.from(good);
    bad[bad.indexOf(Buffer.from('cos\nsystem'))] = 0xff;
    expect(check(bad)).toMatchObject({ status: 'invalid', reason: expect.stringMatching(/unknown pickle opcode 0xff/) });
  });

  it('bytes torch.load would not unpickle are left alone: XOR payloads, broken pickles under other names', () => {
    expect(check(readFileSync(join(TORCH, 'xor_encoded_files', 'pytorch_model-00001-of-00003.bin'))).status).toBe('none');
    expect(check(Buffer.from([0x80, 0x02, 0xff, 0xff]), 'tokenizer.model').status).toBe('none');
    // Python stops at a first byte that is no opcode: nothing is unpickled.
    expect(check(Buffer.from('\x00\x01 not a pickle', 'latin1'), 'weights.bin').status).toBe('none');
  });

  it('under a checkpoint name, a broken zip or a pickle that breaks is invalid, never "not a checkpoint" (changed: issue 19)', () => {
    expect(check(Buffer.from('PK\u0003\u0004' + 'x'.repeat(20), 'latin1'))).toMatchObject({ status: 'invalid', reason: expect.stringMatching(/no zip end record/) });
    expect(check(Buffer.from([0x80, 0x02, 0xff, 0xff]), 'weights.bin')).toMatchObject({ status: 'invalid', reason: expect.stringMatching(/unknown pickle opcode 0xff/) });
    expect(check(Buffer.from([0x80, 0x02, 0x4b, 0x01]), 'weights.bin')).toMatchObject({ status: 'invalid', reason: 'the file ends inside its pickle' });
  });
});

describe('the walker reads integers as CPython does, or refuses them', () => {
  const pkl = (body: string) => Buffer.from(`\x80\x02${body}`, 'latin1');
  it.each(['1_0', '0x10', '1e3', '', '+1', ' 1', '010', '-0'])('refuses the memo key %j in PUT and GET', (key) => {
    expect(() => walkPickle(pkl(`K\x01p${key}\n.`))).toThrow(PickleError);
    expect(() => walkPickle(pkl(`K\x01p1\n0g${key}\n.`))).toThrow(PickleError);
  });
  // CPython's INT reads `010` as octal 8 and `-0` as False; its LONG refuses `010`.
  it.each(['1_0', '0x10', '1e3', '', '+1', '010', '007', '-0', '-010'])('refuses the INT and LONG argument %j', (arg) => {
    expect(() => walkPickle(pkl(`I${arg}\n.`))).toThrow(/not a plain decimal/);
    expect(() => walkPickle(pkl(`L${arg}L\n.`))).toThrow(/not a plain decimal/);
  });
  it('reads plain decimals, True/False as INT 01/00, and keeps huge ones as unknown values', () => {
    expect(walkPickle(pkl('I-12\n.')).root).toEqual({ t: 'int', v: -12 });
    expect(walkPickle(pkl('I01\n.')).root).toEqual({ t: 'bool', v: true });
    expect(walkPickle(pkl('L123456789012345678901234567890L\n.')).root).toEqual({ t: 'other' });
    expect(walkPickle(pkl('K\x07p12\n0g12\n.')).root).toEqual({ t: 'int', v: 7 });
  });
  it('a pickle that breaks after applying a global still names it (Python ran it by then)', () => {
    const bytes = pkl('cos\nsystem\nX\x02\x00\x00\x00hi\x85R\xff');
    try {
      walkPickle(bytes);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(PickleError);
      expect((err as PickleError).globalsBefore).toEqual([{ ref: 'os.system', ops: ['GLOBAL', 'REDUCE'] }]);
    }
  });
  it('names a call of something that is not a global (torch applies only allowed globals)', () => {
    const walk = walkPickle(pkl('ccollections\nOrderedDict\n)R)R.'));
    expect(walk.globals.map((g) => g.ref)).toEqual(['collections.OrderedDict', 'a computed call value']);
  });
});

describe('frames: read as CPython reads them, or refused', () => {
  const frame = (body: string) => {
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(Buffer.byteLength(body, 'latin1')));
    return `\x95${length.toString('latin1')}${body}`;
  };
  const pkl = (body: string) => Buffer.from(`\x80\x04${body}`, 'latin1');
  const memo = '\x8c\x02osq\x000\x8c\x06systemq\x010\x8c\x0bcollectionsq\x0a0\x8c\x0bOrderedDictq\x0b0';

  it.skipIf(!HAS_PYTHON)('walks CPython pickles of many frames (protocols 4 and 5) to their STOP', () => {
    const script = 'import pickle, sys\nd = {"k%d" % i: ("v%d" % i) * 30 for i in range(3000)}\nfor p in (4, 5):\n    sys.stdout.write(pickle.dumps(d, protocol=p).hex() + "\\n")\n';
    for (const hex of execFileSync('python3', ['-c', script], { encoding: 'utf8', maxBuffer: 8 << 20 }).trim().split('\n')) {
      const bytes = Buffer.from(hex, 'hex');
      expect(bytes.subarray(2).filter((b) => b === 0x95).length).toBeGreaterThan(3);
      const walk = walkPickle(bytes);
      expect(walk.end).toBe(bytes.length);
      expect(walk.root.t === 'dict' && walk.root.items.length).toBe(3000);
    }
  });

  it('reads a frame that ends where its last opcode ends, and unframed opcodes after it', () => {
    expect(walkPickle(pkl(`${frame('K\x07')}K\x08\x86${frame('.')}`)).root).toEqual({ t: 'tuple', items: [{ t: 'int', v: 7 }, { t: 'int', v: 8 }] });
  });

  it('refuses a line read past its frame: CPython reads GET 0 and GET 1 (os.system) where the line says GET 10 and GET 11', () => {
    const bytes = pkl(`${memo}${frame('g1')}0\n${frame('g1')}1\n\x93)R.`);
    expect(() => walkPickle(bytes)).toThrow(/the argument read at byte \d+ runs past the end of its FRAME at byte \d+/);
    // The same opcodes each inside its frame are read as written.
    expect(walkPickle(pkl(`${memo}${frame('g10\n')}${frame('g11\n')}\x93)R.`)).globals.map((g) => g.ref)).toEqual(['collections.OrderedDict']);
  });

  it('refuses a counted read past its frame, a frame begun inside another, and a STOP before its frame ends', () => {
    expect(() => walkPickle(pkl(`${frame('\x8c\x06sys')}tem.`))).toThrow(/runs past the end of its FRAME/);
    expect(() => walkPickle(pkl(`${frame('X\x02\x00')}\x00\x00os.`))).toThrow(/runs past the end of its FRAME/);
    expect(() => walkPickle(pkl(frame(`K\x01${frame('K\x02\x86.')}`)))).toThrow(/FRAME at byte 13 begins inside the frame that ends at byte/);
    expect(() => walkPickle(pkl(frame('K\x01.K\x02.')))).toThrow(/STOP at byte 13 ends the pickle before its FRAME ends at byte 17/);
  });
});

describe('text arguments are decoded as CPython decodes them (torch passes encoding="utf-8")', () => {
  const cases: [string, string][] = [
    ['UNICODE escapes', 'V\\u006fs\\\\u0041\\\\\\u0042\\U0001F600\n.'],
    ['UNICODE \\u short of digits', 'Vab\\u12\n.'],
    ['UNICODE \\U out of range', 'V\\U00110000\n.'],
    ['STRING escapes', "S'a\\x41\\101\\q\\n\\\\\\'\\\"'\n."],
    ['STRING octal above 0o377', "S'\\501'\n."],
    ['STRING unquoted', "S'ab\n."],
    ['STRING bad \\x', "S'ab\\x4'\n."],
    ['STRING not UTF-8', "S'\\xff'\n."],
    ['BINUNICODE surrogate', 'X\x06\x00\x00\x00a\xed\xa0\x80bc.'],
    ['BINUNICODE BOM', 'X\x04\x00\x00\x00\xef\xbb\xbfa.'],
    ['BINUNICODE not UTF-8', 'X\x02\x00\x00\x00a\xff.'],
    ['BINSTRING surrogate', 'T\x03\x00\x00\x00\xed\xa0\x80.'],
    ['SHORT_BINSTRING UTF-8', 'U\x02\xc3\xa9.'],
  ];

  it.skipIf(!HAS_PYTHON)('the same string, or a refusal where CPython refuses', () => {
    const bytes = cases.map(([, body]) => Buffer.from(`\x80\x02${body}`, 'latin1'));
    const script = 'import pickle, io, sys, json, warnings\nwarnings.simplefilter("ignore")\nout = []\nfor h in sys.argv[1:]:\n    try:\n        out.append(pickle.Unpickler(io.BytesIO(bytes.fromhex(h)), encoding="utf-8").load())\n    except Exception:\n        out.append(None)\nprint(json.dumps(out))\n';
    const python = JSON.parse(execFileSync('python3', ['-c', script, ...bytes.map((b) => b.toString('hex'))], { encoding: 'utf8' })) as (string | null)[];
    expect(python.filter((v) => v === null).length).toBeGreaterThan(3);
    cases.forEach(([what], i) => {
      let ours: string | null;
      try {
        const root = walkPickle(bytes[i]!).root;
        ours = root.t === 'str' ? root.v : `not a string: ${root.t}`;
      } catch (err) {
        expect(err, what).toBeInstanceOf(PickleError);
        ours = null;
      }
      expect(ours, what).toEqual(python[i]);
    });
  });
});

describe('BUILD on a class or function itself', () => {
  it('is named: it would set attributes of torch code for the rest of the program', () => {
    const walk = walkPickle(Buffer.from('\x80\x02ctorch\nTensor\nN}\x86b.', 'latin1'));
    expect(walk.globals).toEqual([
      { ref: 'torch.Tensor', ops: ['GLOBAL'] },
      { ref: 'attributes of torch.Tensor', ops: ['BUILD'] },
    ]);
  });
});

describe('the legacy format: pickles walked as far as torch reads them', () => {
  it('a protocol version that is a call (a tensor holding 1001 passes torch\'s `!=`) does not end the walk', () => {
    const bytes = readFileSync(join(TORCH, 'hostile', 'pickle', 'tensor-protocol.bin'));
    // Its four pickles end the file where torch's fifth (the storage keys) would start.
    expect(() => scanPickles(bytes)).toThrow(PickleIncomplete);
    expect(check(bytes)).toEqual({ status: 'unsafe', globals: ['posix.system (GLOBAL, REDUCE)'] });
  });
  it('a protocol version torch compares as unequal (another integer, a string) ends it', () => {
    const magic = Buffer.from('80028a0a6c fc9c46f9206aa85019 2e'.replace(/ /g, ''), 'hex');
    const rest = Buffer.from('\x80\x02cos\nsystem\n.', 'latin1');
    for (const second of ['\x80\x02M\xea\x03.', '\x80\x02X\x04\x00\x00\x001001.']) {
      const scan = scanPickles(Buffer.concat([magic, Buffer.from(second, 'latin1'), rest]));
      expect(scan.walks).toHaveLength(2);
      expect(unsafeGlobals(scan)).toEqual([]);
    }
  });
});
