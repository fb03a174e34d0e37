/**
 * A restricted pickle walker: it reads the opcodes of a pickle (protocols 0-5) and builds symbolic
 * values on a stack, without ever importing or calling anything. It records every global the pickle
 * references (GLOBAL, STACK_GLOBAL with the strings it takes from the stack, INST) and what applies
 * them (REDUCE, BUILD, NEWOBJ, OBJ, INST), and, for a torch state dict, each tensor's storage and
 * layout. Malformed input raises PickleError; input that ends early raises PickleIncomplete.
 */

import { pushLiteral } from './pickle-literals.js';
import { memoKeyLine, PickleError, Reader, type Value } from './pickle-reader.js';

export { isPickleOpcode, PickleError, PickleIncomplete } from './pickle-reader.js';
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

import { MARK, OTHER, type Slot } from './pickle-reader.js';

/**
 * Walks one pickle starting at `start`. Throws PickleIncomplete when the bytes end first, and
 * PickleError for anything that is not a well-formed pickle.
 */
export function walkPickle(bytes: Uint8Array, start = 0): PickleWalk {
  const globals = new Map<string, GlobalUse>();
  try {
    return walk(bytes, start, globals);
  } catch (err) {
    if (err instanceof PickleError) err.globalsBefore = [...globals.values()];
    throw err;
  }
}

function walk(bytes: Uint8Array, start: number, globals: Map<string, GlobalUse>): PickleWalk {
  const r = new Reader(bytes, start);
  const stack: Slot[] = [];
  const memo = new Map<number, Value>();

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
  // torch's weights-only unpickler applies only allowed globals; anything else that is called (the
  // result of another call, a string) is named as such, so the allowlist refuses it.
  const applied = (target: Value, op: string): void => {
    useGlobal(target.t === 'global' ? target.ref : `a computed ${target.t} value`, op);
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
        r.frame(r.size(8), at);
        break;
      case 0x2e: // STOP
        r.stopped(at);
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
        // On a class or a function itself, BUILD sets its attributes for the rest of the program
        // (torch's weights-only unpickler refuses it; no pickler writes it).
        else if (target.t === 'global') useGlobal(`attributes of ${target.ref}`, 'BUILD');
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
        const v = memo.get(memoKeyLine(r.line(), `GET at byte ${at}`));
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
        memo.set(memoKeyLine(r.line(), `PUT at byte ${at}`), top());
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
        if (!pushLiteral(op, r, stack, at)) throw new PickleError(`unknown pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${at}`);
        break;
    }
  }
}
