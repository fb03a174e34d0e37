import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { refuseSharedOutputs, sameFileKey } from '../../src/plan/output-names.js';

const file = (name: string, output = name) => ({ name, payloadPath: `/x/${name}`, output });

describe('sameFileKey', () => {
  it('is one key for names a case- or normalisation-insensitive file system holds as one file', () => {
    expect(sameFileKey('Config.JSON')).toBe(sameFileKey('config.json'));
    // é composed (NFC, as Linux and manifests write it) and decomposed (NFD, as macOS did).
    expect(sameFileKey('r\u00e9sum\u00e9.json')).toBe(sameFileKey('re\u0301sume\u0301.json'));
    expect(sameFileKey('\u00c9.json')).toBe(sameFileKey('e\u0301.json'));
  });

  it('tells apart names that differ in more than that', () => {
    expect(sameFileKey('config.json')).not.toBe(sameFileKey('config.json5'));
    expect(sameFileKey('pytorch_model-00001-of-00002.bin')).not.toBe(sameFileKey('pytorch_model-00002-of-00002.bin'));
  });
});

describe('refuseSharedOutputs', () => {
  it('lets distinct names through', () => {
    expect(() => refuseSharedOutputs([file('config.json'), file('pytorch_model.bin', 'model.safetensors')], [{ name: 'm-F16.gguf', what: 'the GGUF' }])).not.toThrow();
  });

  it('refuses a converted name that a release file has too, naming both and the fix (either order)', () => {
    const converted = file('pytorch_model.bin.index.json', 'model.safetensors.index.json');
    const plain = file('model.safetensors.index.json');
    for (const files of [[converted, plain], [plain, converted]]) {
      const err = (() => {
        try {
          refuseSharedOutputs(files);
        } catch (e) {
          return e;
        }
      })() as InputError;
      expect(err).toBeInstanceOf(InputError);
      expect(err.exitCode).toBe(2);
      expect(err.message).toContain('would be written as model.safetensors.index.json, which is also the name of /x/');
      expect(err.file).toBe(files[1]!.payloadPath);
      expect(err.hint).toBe('keep one of them in the XOR folder');
    }
  });

  it('refuses names equal but for case or normalisation, saying so', () => {
    expect(() => refuseSharedOutputs([file('config.json'), file('CONFIG.json')])).toThrow(/would be written as CONFIG\.json, which is also the name of \/x\/config\.json \("config\.json" differs from it only in case or Unicode normalisation/);
    expect(() => refuseSharedOutputs([file('caf\u00e9.json'), file('cafe\u0301.json')])).toThrow(/only in case or Unicode normalisation/);
  });

  it('refuses a release file named as another output of the run', () => {
    expect(() => refuseSharedOutputs([file('m-Q8_0.GGUF')], [{ name: 'm-Q8_0.gguf', what: 'a GGUF this decode can write' }])).toThrow(
      expect.objectContaining({ message: expect.stringContaining('which is also the name of a GGUF this decode can write'), hint: 'take it out of the XOR folder' }),
    );
  });
});
