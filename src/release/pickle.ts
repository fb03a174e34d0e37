/**
 * A restricted pickle walker: it reads the opcodes of a pickle (protocols 0-5) and builds symbolic
 * values on a stack, without ever importing or calling anything. It records every global the pickle
 * references (GLOBAL, STACK_GLOBAL with the strings it takes from the stack, INST) and what applies
 * them (REDUCE, BUILD, NEWOBJ, OBJ, INST), and, for a torch state dict, each tensor's storage and
 * layout. Malformed input raises PickleError; input that ends early raises PickleIncomplete.
 */

import { longValue, PickleError, Reader, text, type Value } from './pickle-reader.js';

export { PickleError, PickleIncomplete } from './pickle-reader.js';
export type { Value } from './pickle-reader.js';

export interface GlobalUse {
  /** module.name */
  ref: string;
  /** The opcodes that referenced and applied it (GLOBAL, STACK_GLOBAL, INST; REDUCE, BUILD, NEWOBJ, OBJ). */
  ops: string[];
}

export interface PickleWalk {
  root: Value;
  globals: GlobalUse[];
  /** Offset just past the STOP opcode. */
  end: number;
}

const MARK: unique symbol = Symbol('mark');
type Slot = Value | typeof MARK;

const OTHER: Value = { t: 'other' };

/**
 * Walks one pickle starting at `start`. Throws PickleIncomplete when the bytes end first, and
 * PickleError for anything that is not a well-formed pickle.
 */
export function walkPickle(bytes: Uint8Array, start = 0): PickleWalk {
  const r = new Reader(bytes, start);
  const stack: Slot[] = [];
  const memo = new Map<number, Value>();
  const globals = new Map<string, GlobalUse>();

  const pop = (): Value => {
    const v = stack.pop();
    if (v === undefined || v === MARK) throw new PickleError('the pickle pops an empty stack');
    return v;
  };
  const top = (): Value => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) throw new PickleError('the pickle reads an empty stack');
    return v;
  };
  const popMark = (): Value[] => {
    const at = stack.lastIndexOf(MARK);
    if (at < 0) throw new PickleError('the pickle has no MARK where it needs one');
    const items = stack.splice(at) as Slot[];
    return items.slice(1) as Value[];
  };
  const useGlobal = (ref: string, op: string): Value => {
    const use = globals.get(ref) ?? { ref, ops: [] };
    if (!use.ops.includes(op)) use.ops.push(op);
    globals.set(ref, use);
    return { t: 'global', ref };
  };
  const applied = (target: Value, op: string): void => {
    if (target.t === 'global') useGlobal(target.ref, op);
  };
  const setItems = (target: Value, pairs: [Value, Value][]): void => {
    if (target.t === 'dict' || target.t === 'call') target.items.push(...pairs);
  };

  for (;;) {
    const at = r.pos;
    const op = r.u8();
    switch (op) {
      case 0x80: // PROTO
        if (r.u8() > 5) throw new PickleError(`unsupported pickle protocol at byte ${at}`);
        break;
      case 0x95: // FRAME
        r.size(8);
        break;
      case 0x2e: // STOP
        return { root: pop(), globals: [...globals.values()], end: r.pos };
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x30: // POP
        stack.pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x46: // FLOAT
        r.line();
        stack.push(OTHER);
        break;
      case 0x47: // BINFLOAT
        r.take(8);
        stack.push(OTHER);
        break;
      case 0x49: { // INT (also True/False as 01/00)
        const line = r.line();
        stack.push(line === '01' ? { t: 'bool', v: true } : line === '00' ? { t: 'bool', v: false } : { t: 'int', v: Number(line) });
        break;
      }
      case 0x4a: // BININT
        stack.push({ t: 'int', v: r.le(4) });
        break;
      case 0x4b: // BININT1
        stack.push({ t: 'int', v: r.u8() });
        break;
      case 0x4d: // BININT2
        stack.push({ t: 'int', v: r.le(2) });
        break;
      case 0x4c: // LONG
        stack.push({ t: 'int', v: Number(r.line().replace(/L$/, '')) });
        break;
      case 0x8a: // LONG1
        stack.push(longValue(r.take(r.u8())));
        break;
      case 0x8b: // LONG4
        stack.push(longValue(r.take(r.size(4))));
        break;
      case 0x53: // STRING
        stack.push({ t: 'str', v: r.line().replace(/^(['"])(.*)\1$/, '$2') });
        break;
      case 0x54: // BINSTRING
        stack.push(text(r.take(r.size(4))));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(text(r.take(r.u8())));
        break;
      case 0x42: // BINBYTES
        r.take(r.size(4));
        stack.push(OTHER);
        break;
      case 0x43: // SHORT_BINBYTES
        r.take(r.u8());
        stack.push(OTHER);
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        r.take(r.size(8));
        stack.push(OTHER);
        break;
      case 0x56: // UNICODE (raw-unicode-escape; names here are ASCII)
        stack.push({ t: 'str', v: r.line() });
        break;
      case 0x58: // BINUNICODE
        stack.push(text(r.take(r.size(4))));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(r.take(r.u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text(r.take(r.size(8))));
        break;
      case 0x97: // NEXT_BUFFER
        stack.push(OTHER);
        break;
      case 0x98: // READONLY_BUFFER
        break;
      case 0x4e: // NONE
        stack.push({ t: 'none' });
        break;
      case 0x88: // NEWTRUE
        stack.push({ t: 'bool', v: true });
        break;
      case 0x89: // NEWFALSE
        stack.push({ t: 'bool', v: false });
        break;
      case 0x5d: // EMPTY_LIST
        stack.push({ t: 'list', items: [] });
        break;
      case 0x61: { // APPEND
        const v = pop();
        const list = top();
        if (list.t === 'list') list.items.push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const list = top();
        if (list.t === 'list') list.items.push(...items);
        break;
      }
      case 0x6c: // LIST
        stack.push({ t: 'list', items: popMark() });
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push({ t: 'tuple', items: [] });
        break;
      case 0x74: // TUPLE
        stack.push({ t: 'tuple', items: popMark() });
        break;
      case 0x85: // TUPLE1
        stack.push({ t: 'tuple', items: [pop()] });
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        stack.push({ t: 'tuple', items: [pop(), b] });
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        stack.push({ t: 'tuple', items: [pop(), b, c] });
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push({ t: 'dict', items: [] });
        break;
      case 0x64: { // DICT
        const items = popMark();
        const pairs: [Value, Value][] = [];
        for (let i = 0; i + 1 < items.length; i += 2) pairs.push([items[i]!, items[i + 1]!]);
        stack.push({ t: 'dict', items: pairs });
        break;
      }
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [[k, v]]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        const pairs: [Value, Value][] = [];
        for (let i = 0; i + 1 < items.length; i += 2) pairs.push([items[i]!, items[i + 1]!]);
        setItems(top(), pairs);
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push(OTHER);
        break;
      case 0x90: // ADDITEMS
        popMark();
        break;
      case 0x91: // FROZENSET
        popMark();
        stack.push(OTHER);
        break;
      case 0x63: { // GLOBAL
        const module = r.line();
        const name = r.line();
        stack.push(useGlobal(`${module}.${name}`, 'GLOBAL'));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (module.t !== 'str' || name.t !== 'str') throw new PickleError(`STACK_GLOBAL at byte ${at} takes names that are not strings`);
        stack.push(useGlobal(`${module.v}.${name.v}`, 'STACK_GLOBAL'));
        break;
      }
      case 0x69: { // INST: module and name on lines, arguments since the MARK, instantiated at once
        const module = r.line();
        const name = r.line();
        const args = popMark();
        const cls = useGlobal(`${module}.${name}`, 'INST');
        stack.push({ t: 'call', fn: cls, args: { t: 'tuple', items: args }, items: [] });
        break;
      }
      case 0x6f: { // OBJ: class and arguments since the MARK
        const [cls, ...args] = popMark();
        if (!cls) throw new PickleError(`OBJ at byte ${at} has no class`);
        applied(cls, 'OBJ');
        stack.push({ t: 'call', fn: cls, args: { t: 'tuple', items: args }, items: [] });
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop();
        const cls = pop();
        applied(cls, 'NEWOBJ');
        stack.push({ t: 'call', fn: cls, args, items: [] });
        break;
      }
      case 0x92: { // NEWOBJ_EX
        pop();
        const args = pop();
        const cls = pop();
        applied(cls, 'NEWOBJ_EX');
        stack.push({ t: 'call', fn: cls, args, items: [] });
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop();
        applied(fn, 'REDUCE');
        stack.push({ t: 'call', fn, args, items: [] });
        break;
      }
      case 0x62: { // BUILD
        pop();
        const target = top();
        if (target.t === 'call') applied(target.fn, 'BUILD');
        break;
      }
      case 0x82: // EXT1
      case 0x83: // EXT2
      case 0x84: { // EXT4: a global named by the copyreg extension registry, not by its name
        const code = op === 0x82 ? r.u8() : op === 0x83 ? r.le(2) : r.le(4);
        stack.push(useGlobal(`copyreg extension code ${code}`, 'EXT'));
        break;
      }
      case 0x50: // PERSID
        stack.push({ t: 'persid', id: { t: 'str', v: r.line() } });
        break;
      case 0x51: // BINPERSID
        stack.push({ t: 'persid', id: pop() });
        break;
      case 0x67: { // GET
        const v = memo.get(Number(r.line()));
        if (!v) throw new PickleError(`GET at byte ${at} of a memo entry never stored`);
        stack.push(v);
        break;
      }
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const key = op === 0x68 ? r.u8() : r.size(4);
        const v = memo.get(key);
        if (!v) throw new PickleError(`BINGET at byte ${at} of a memo entry never stored`);
        stack.push(v);
        break;
      }
      case 0x70: // PUT
        memo.set(Number(r.line()), top());
        break;
      case 0x71: // BINPUT
        memo.set(r.u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(r.size(4), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      default:
        throw new PickleError(`unknown pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${at}`);
    }
  }
}
