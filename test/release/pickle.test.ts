import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { checkpointFormat, scanCheckpoint, unsafeGlobals } from '../../src/release/checkpoint.js';
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
    const scan = scanCheckpoint(bytes, 'zip')!;
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

  it('bytes that are no checkpoint are left alone: XOR payloads, a zip of something else, random bytes under other names', () => {
    expect(check(readFileSync(join(TORCH, 'xor_encoded_files', 'pytorch_model-00001-of-00003.bin'))).status).toBe('none');
    expect(check(Buffer.from('PK\u0003\u0004' + 'x'.repeat(20), 'latin1')).status).toBe('none');
    expect(check(Buffer.from([0x80, 0x02, 0xff, 0xff]), 'tokenizer.model').status).toBe('none');
    expect(check(Buffer.from([0x80, 0x02, 0xff, 0xff]), 'weights.bin').status).toBe('none');
  });
});
