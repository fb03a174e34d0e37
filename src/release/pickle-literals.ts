/**
 * The pickle opcodes that push one literal (numbers, strings, bytes, None, booleans): what they
 * read, and the symbolic value they leave on the stack.
 */
import { decimalLine, longValue, OTHER, Reader, type Slot, type Value } from './pickle-reader.js';
import { quotedString, rawUnicodeEscape, utf8 } from './pickle-text.js';

const str = (v: string): Value => ({ t: 'str', v });

/** An integer too large to be exact as a number is kept as a value of no known kind. */
function intValue(v: number | undefined): Value {
  return v === undefined ? OTHER : { t: 'int', v };
}

/** Pushes the literal opcode `op` reads; false when `op` is not one. */
export function pushLiteral(op: number, r: Reader, stack: Slot[], at: number): boolean {
  switch (op) {
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
      stack.push(line === '01' ? { t: 'bool', v: true } : line === '00' ? { t: 'bool', v: false } : intValue(decimalLine(line, `INT at byte ${at}`)));
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
      stack.push(intValue(decimalLine(r.line().replace(/L$/, ''), `LONG at byte ${at}`)));
      break;
    case 0x8a: // LONG1
      stack.push(longValue(r.take(r.u8())));
      break;
    case 0x8b: // LONG4
      stack.push(longValue(r.take(r.size(4))));
      break;
    case 0x53: // STRING
      stack.push(str(quotedString(r.line(), `STRING at byte ${at}`)));
      break;
    case 0x54: // BINSTRING
      stack.push(str(utf8(r.take(r.size(4)), `BINSTRING at byte ${at}`, false)));
      break;
    case 0x55: // SHORT_BINSTRING
      stack.push(str(utf8(r.take(r.u8()), `SHORT_BINSTRING at byte ${at}`, false)));
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
    case 0x56: // UNICODE
      stack.push(str(rawUnicodeEscape(r.line(), `UNICODE at byte ${at}`)));
      break;
    case 0x58: // BINUNICODE
      stack.push(str(utf8(r.take(r.size(4)), `BINUNICODE at byte ${at}`, true)));
      break;
    case 0x8c: // SHORT_BINUNICODE
      stack.push(str(utf8(r.take(r.u8()), `SHORT_BINUNICODE at byte ${at}`, true)));
      break;
    case 0x8d: // BINUNICODE8
      stack.push(str(utf8(r.take(r.size(8)), `BINUNICODE8 at byte ${at}`, true)));
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
    default:
      return false;
  }
  return true;
}
