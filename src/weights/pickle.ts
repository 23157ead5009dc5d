/**
 * A restricted unpickler for the `data.pkl` of a `torch.save` state dict.
 *
 * It understands the opcodes a state dict uses (protocols 2-5) and resolves globals from a short
 * allow-list only. Nothing is ever executed: an allowed global is a tag, and "calling" it (REDUCE /
 * NEWOBJ) builds a plain JS descriptor (a Map for an OrderedDict, a `TorchTensorRef` for
 * `_rebuild_tensor_v2`, ...). Any other global (`posix system`, `builtins eval`, ...) and any opcode
 * not listed here is refused with an error naming it. Every length field is checked against the
 * bytes that remain before anything is allocated, and the loop advances on every opcode.
 *
 * Opcodes cost bytes but not in proportion to what they build: one-byte DUP or BINGET pushes another
 * reference, and a REDUCE of a memoized list copies the whole list again. So the reader also bounds
 * what a state dict can need (see `PICKLE_LIMITS`): the stack depth, the memo and the total number of
 * items it puts into tuples, lists and dicts. A hostile pickle is refused when it crosses one of them,
 * after a bounded amount of work and memory, instead of after gigabytes.
 */
import { WeightFileError, type DType } from './types.js';

/** An allowed global, as pushed by GLOBAL / STACK_GLOBAL. */
export class PickleGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string { return `${this.module}.${this.name}`; }
}

/** A storage class global (`torch.FloatStorage`, ...); `dtype` null for `UntypedStorage` (bytes). */
export class TorchStorageType extends PickleGlobal {
  constructor(module: string, name: string, readonly dtype: DType | null) { super(module, name); }
}

/** A dtype global (`torch.float32`, ...), as passed to `_rebuild_tensor_v3`. */
export class TorchDTypeRef extends PickleGlobal {
  constructor(module: string, name: string, readonly dtype: DType) { super(module, name); }
}

/** A storage as named by a persistent id `('storage', storage_type, key, location, numel)`. */
export class TorchStorageRef {
  constructor(
    /** Archive-relative key: the data lives in `<archive>/data/<key>`. */
    readonly key: string,
    /** Element type; null for an untyped (byte) storage. */
    readonly dtype: DType | null,
    /** Element count (bytes for an untyped storage). */
    readonly numel: number,
    readonly location: string,
  ) {}
}

/** A tensor view on a storage, from `_rebuild_tensor{,_v2,_v3}`; offset and strides in elements. */
export class TorchTensorRef {
  constructor(
    readonly storage: TorchStorageRef,
    readonly dtype: DType,
    readonly storageOffset: number,
    readonly size: readonly number[],
    readonly stride: readonly number[],
  ) {}
}

/** `torch.device('cpu')`. */
export class TorchDevice {
  constructor(readonly type: string) {}
}

export type PickleValue =
  | null | boolean | number | bigint | string
  | PickleValue[]
  | Map<PickleValue, PickleValue>
  | PickleGlobal | TorchStorageRef | TorchTensorRef | TorchDevice;

const STORAGE_TYPES: Record<string, DType> = {
  FloatStorage: 'F32', HalfStorage: 'F16', BFloat16Storage: 'BF16', DoubleStorage: 'F64',
  LongStorage: 'I64', IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8', ByteStorage: 'U8', BoolStorage: 'BOOL',
};

const TORCH_DTYPES: Record<string, DType> = {
  float32: 'F32', float: 'F32', float16: 'F16', half: 'F16', bfloat16: 'BF16', float64: 'F64', double: 'F64',
  int64: 'I64', long: 'I64', int32: 'I32', int: 'I32', int16: 'I16', short: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL',
};

const CALLABLES = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor_v3',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch.device',
]);

/** The allow-list: returns the tag for an allowed global, or null. */
function allowedGlobal(module: string, name: string): PickleGlobal | null {
  if (module === 'torch') {
    const st = STORAGE_TYPES[name];
    if (st && Object.prototype.hasOwnProperty.call(STORAGE_TYPES, name)) return new TorchStorageType(module, name, st);
    if (name === 'UntypedStorage') return new TorchStorageType(module, name, null);
    const dt = TORCH_DTYPES[name];
    if (dt && Object.prototype.hasOwnProperty.call(TORCH_DTYPES, name)) return new TorchDTypeRef(module, name, dt);
  }
  if (module === 'torch.storage' && name === 'UntypedStorage') return new TorchStorageType(module, name, null);
  if (CALLABLES.has(`${module}.${name}`)) return new PickleGlobal(module, name);
  return null;
}

/**
 * Bounds on the work a state-dict pickle may ask for. Measured on the fixtures' torch.save pickles:
 * per tensor about 8 memo entries and 20 items put into tuples and dicts; Python's pickler batches
 * SETITEMS by 1000 pairs, so its stack stays near 2,000 values, while a writer that puts a whole state
 * dict under one MARK needs 2 stack slots per tensor. The bounds below fit some 50,000 tensors (far
 * more than one checkpoint file holds; bge-m3 has 391) and keep a hostile pickle to a few tens of MB.
 */
export const PICKLE_LIMITS = {
  /** Values on the stack plus open MARKs. */
  maxStack: 1 << 17,
  /** Memo slots (BINPUT / LONG_BINPUT / MEMOIZE index bound). */
  maxMemo: 1 << 19,
  /** Items placed into tuples, lists and dicts over the whole pickle (tensor sizes and OrderedDict pairs included). */
  maxItems: 1 << 20,
} as const;

const MARK = Symbol('mark');
type StackItem = PickleValue | typeof MARK;

/** Names of real pickle opcodes this reader does not accept (for the error message). */
const UNSUPPORTED_OPNAMES: Record<number, string> = {
  0x49: 'INT', 0x4c: 'LONG', 0x46: 'FLOAT', 0x53: 'STRING', 0x56: 'UNICODE', 0x50: 'PERSID', 0x70: 'PUT',
  0x67: 'GET', 0x69: 'INST', 0x6f: 'OBJ', 0x42: 'BINBYTES', 0x43: 'SHORT_BINBYTES', 0x8e: 'BINBYTES8',
  0x8b: 'LONG4', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS', 0x91: 'FROZENSET',
  0x92: 'NEWOBJ_EX', 0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

export interface UnpickleOptions {
  /** File named in errors. */
  readonly file: string;
  /** Where inside the file (e.g. `archive/data.pkl`), named in errors. */
  readonly where: string;
  /** Overrides of `PICKLE_LIMITS` (tests). */
  readonly limits?: Partial<typeof PICKLE_LIMITS>;
}

/** Unpickles a torch state-dict pickle. Throws WeightFileError naming the file, the pickle and the byte offset. */
export function unpickle(data: Uint8Array, opts: UnpickleOptions): PickleValue {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const stack: StackItem[] = [];
  const marks: number[] = [];
  // Pickle writers number memo slots 0, 1, 2, …, so an array (indices below maxMemo) holds them.
  const memo: Array<PickleValue | undefined> = [];
  let memoEntries = 0;
  const tuples = new WeakSet<object>();
  const limits = { ...PICKLE_LIMITS, ...opts.limits };
  let placed = 0; // items placed into containers so far (see PICKLE_LIMITS.maxItems)
  let pos = 0;
  let opPos = 0;

  const fail = (msg: string): never => {
    throw new WeightFileError(opts.file, `${opts.where}: ${msg} (at byte ${opPos})`);
  };
  const need = (n: number, what: string): void => {
    if (n > data.length - pos) fail(`${what} needs ${n} bytes but only ${data.length - pos} remain (truncated or corrupt pickle)`);
  };
  const u8 = (): number => { need(1, 'argument'); return data[pos++]!; };
  const u16 = (): number => { need(2, 'argument'); const v = dv.getUint16(pos, true); pos += 2; return v; };
  const u32 = (): number => { need(4, 'argument'); const v = dv.getUint32(pos, true); pos += 4; return v; };
  const i32 = (): number => { need(4, 'argument'); const v = dv.getInt32(pos, true); pos += 4; return v; };
  const u64 = (): number => {
    need(8, 'argument');
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(data.length)) fail(`length ${v} exceeds the pickle size`);
    return Number(v);
  };
  const bytes = (n: number, what: string): Uint8Array => { need(n, what); const b = data.subarray(pos, pos + n); pos += n; return b; };
  const text = (n: number, what: string): string => {
    const b = bytes(n, what);
    try { return utf8.decode(b); } catch { return fail(`${what} is not valid UTF-8`); }
  };
  const line = (what: string): string => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail(`${what} has no terminating newline`);
    const s = text(end - pos, what);
    pos++; // newline
    return s;
  };
  /** Refuses one more stack value or MARK beyond PICKLE_LIMITS.maxStack (a DUP or MARK bomb). */
  const room = (): void => {
    if (stack.length + marks.length >= limits.maxStack) {
      fail(`stack deeper than ${limits.maxStack} values and marks: not a state dict (hostile or corrupt pickle)`);
    }
  };
  const push = (v: StackItem): void => { room(); stack.push(v); };
  /** Charges `n` items placed into containers against PICKLE_LIMITS.maxItems. */
  const charge = (n: number): void => {
    placed += n;
    if (placed > limits.maxItems) fail(`builds more than ${limits.maxItems} container items: not a state dict (hostile or corrupt pickle)`);
  };
  const pop = (): PickleValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) fail('stack underflow');
    const v = stack.pop()!;
    if (v === MARK) return fail('stack underflow');
    return v;
  };
  const top = (): PickleValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) return fail('stack underflow');
    return v;
  };
  const popMark = (): PickleValue[] => {
    const m = marks.pop();
    if (m === undefined) return fail('no MARK on the stack');
    charge(stack.length - m);
    return stack.splice(m) as PickleValue[];
  };
  const tuple = (values: PickleValue[]): PickleValue[] => { tuples.add(values); return values; };
  const memoPut = (idx: number): void => {
    if (idx >= limits.maxMemo) fail(`memo index ${idx} is beyond the ${limits.maxMemo} entries a state dict can need (hostile or corrupt pickle)`);
    const v = top();
    if (memo[idx] === undefined) memoEntries++;
    memo[idx] = v;
  };
  const asDict = (v: PickleValue, op: string): Map<PickleValue, PickleValue> => {
    if (!(v instanceof Map)) return fail(`${op} on a ${describe(v)}, not a dict`);
    return v;
  };
  const asList = (v: PickleValue, op: string): PickleValue[] => {
    if (!Array.isArray(v) || tuples.has(v)) return fail(`${op} on a ${describe(v)}, not a list`);
    return v;
  };

  const call = (fn: PickleValue, args: PickleValue, op: string): PickleValue => {
    if (!(fn instanceof PickleGlobal) || !CALLABLES.has(fn.qualified)) return fail(`${op} calls a ${describe(fn)}, which is not callable here`);
    if (!Array.isArray(args)) return fail(`${op} arguments are a ${describe(args)}, not a tuple`);
    const q = fn.qualified;
    const arg = (i: number): PickleValue => (i < args.length ? args[i]! : fail(`${q} needs at least ${i + 1} arguments, got ${args.length}`));
    switch (q) {
      case 'collections.OrderedDict': {
        const d = new Map<PickleValue, PickleValue>();
        if (args.length === 0) return d;
        const init = args[0];
        if (args.length > 1 || !Array.isArray(init)) return fail('collections.OrderedDict takes no arguments or one list of pairs');
        charge(init.length); // a memoized list can be passed again and again: each copy counts
        for (const kv of init) {
          if (!Array.isArray(kv) || kv.length !== 2) return fail('collections.OrderedDict pair is not a 2-tuple');
          d.set(kv[0]!, kv[1]!);
        }
        return d;
      }
      case 'torch._utils._rebuild_tensor':
      case 'torch._utils._rebuild_tensor_v2':
      case 'torch._utils._rebuild_tensor_v3': {
        const storage = arg(0);
        if (!(storage instanceof TorchStorageRef)) return fail(`${q}: first argument is a ${describe(storage)}, not a storage`);
        const offset = intArg(arg(1), `${q}: storage_offset`);
        const size = intList(arg(2), `${q}: size`);
        const stride = intList(arg(3), `${q}: stride`);
        if (size.length !== stride.length) return fail(`${q}: size has ${size.length} dims but stride has ${stride.length}`);
        let dtype = storage.dtype;
        if (q === 'torch._utils._rebuild_tensor_v3') {
          const dt = arg(6);
          if (!(dt instanceof TorchDTypeRef)) return fail(`${q}: dtype argument is a ${describe(dt)}, not a torch dtype`);
          if (storage.dtype !== null && storage.dtype !== dt.dtype) return fail(`${q}: dtype ${dt.name} on a ${storage.dtype} storage`);
          dtype = dt.dtype;
        }
        if (dtype === null) return fail(`${q}: untyped storage '${storage.key}' and no dtype`);
        return new TorchTensorRef(storage, dtype, offset, size, stride);
      }
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state': {
        const t = arg(0);
        if (!(t instanceof TorchTensorRef)) return fail(`${q}: data is a ${describe(t)}, not a tensor`);
        return t;
      }
      case 'torch.device': {
        const t = arg(0);
        if (typeof t !== 'string') return fail('torch.device: argument is not a string');
        return new TorchDevice(t);
      }
      default:
        return fail(`${q} is not callable`);
    }
  };
  const intArg = (v: PickleValue, what: string): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return fail(`${what} is ${describe(v)}, not a non-negative integer`);
    return v;
  };
  const intList = (v: PickleValue, what: string): number[] => {
    if (!Array.isArray(v)) return fail(`${what} is a ${describe(v)}, not a tuple`);
    charge(v.length);
    return v.map((x, i) => intArg(x, `${what}[${i}]`));
  };

  const persistentLoad = (pid: PickleValue): PickleValue => {
    if (!Array.isArray(pid) || pid[0] !== 'storage') return fail(`persistent id ${describe(pid)} is not a ('storage', ...) tuple`);
    if (pid.length !== 5) return fail(`storage persistent id has ${pid.length} fields, expected 5`);
    const [, type, key, location, n] = pid;
    if (!(type instanceof TorchStorageType)) return fail(`storage persistent id names a ${describe(type)}, not a torch storage class`);
    if (typeof key !== 'string' || key.length === 0 || key.length > 4096) return fail('storage key is not a string');
    if (typeof location !== 'string') return fail(`storage '${key}': location is not a string`);
    return new TorchStorageRef(key, type.dtype, intArg(n ?? null, `storage '${key}' numel`), location);
  };

  let proto = 0;
  for (;;) {
    opPos = pos;
    if (pos >= data.length) fail('pickle ends without STOP (truncated?)');
    const op = data[pos++]!;
    switch (op) {
      case 0x80: { // PROTO
        proto = u8();
        if (proto > 5) fail(`unsupported pickle protocol ${proto}`);
        break;
      }
      case 0x95: u64(); break; // FRAME: framing is only a buffering hint
      case 0x2e: { // STOP
        const v = pop();
        if (stack.length !== 0) fail(`STOP with ${stack.length} extra items on the stack`);
        return v;
      }
      case 0x28: room(); marks.push(stack.length); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: push(top()); break; // DUP
      case 0x7d: push(new Map()); break; // EMPTY_DICT
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x29: push(tuple([])); break; // EMPTY_TUPLE
      case 0x74: push(tuple(popMark())); break; // TUPLE
      case 0x85: { const a = pop(); charge(1); push(tuple([a])); break; }
      case 0x86: { const b = pop(); const a = pop(); charge(2); push(tuple([a, b])); break; }
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); charge(3); push(tuple([a, b, c])); break; }
      case 0x6c: push(popMark()); break; // LIST
      case 0x64: { // DICT
        const items = popMark();
        if (items.length % 2) fail('DICT with an odd number of items');
        const d = new Map<PickleValue, PickleValue>();
        for (let i = 0; i < items.length; i += 2) d.set(items[i]!, items[i + 1]!);
        push(d);
        break;
      }
      case 0x71: memoPut(u8()); break; // BINPUT
      case 0x72: memoPut(u32()); break; // LONG_BINPUT
      case 0x94: memoPut(memoEntries); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET / LONG_BINGET
        const idx = op === 0x68 ? u8() : u32();
        const v = memo[idx];
        if (v === undefined) fail(`memo entry ${idx} was never stored`);
        push(v!);
        break;
      }
      case 0x4a: push(i32()); break; // BININT
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(u16()); break; // BININT2
      case 0x8a: { // LONG1
        const n = u8();
        const b = bytes(n, 'LONG1');
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        if (n > 0 && b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: { need(8, 'BINFLOAT'); push(dv.getFloat64(pos, false)); pos += 8; break; }
      case 0x88: push(true); break;
      case 0x89: push(false); break;
      case 0x4e: push(null); break;
      case 0x8c: { const n = u8(); push(text(n, 'SHORT_BINUNICODE')); break; }
      case 0x58: { const n = u32(); push(text(n, 'BINUNICODE')); break; }
      case 0x8d: { const n = u64(); push(text(n, 'BINUNICODE8')); break; }
      case 0x55: { const n = u8(); push(text(n, 'SHORT_BINSTRING')); break; }
      case 0x54: {
        const n = i32();
        if (n < 0) fail('BINSTRING with a negative length');
        push(text(n, 'BINSTRING'));
        break;
      }
      case 0x73: { const v = pop(); const k = pop(); charge(1); asDict(top(), 'SETITEM').set(k, v); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        if (items.length % 2) fail('SETITEMS with an odd number of items');
        const d = asDict(top(), 'SETITEMS');
        for (let i = 0; i < items.length; i += 2) d.set(items[i]!, items[i + 1]!);
        break;
      }
      case 0x61: { const v = pop(); charge(1); asList(top(), 'APPEND').push(v); break; } // APPEND
      case 0x65: { // APPENDS
        const items = popMark();
        const l = asList(top(), 'APPENDS');
        for (const it of items) l.push(it);
        break;
      }
      case 0x63: { // GLOBAL
        const module = line('GLOBAL module');
        const name = line('GLOBAL name');
        push(resolveGlobal(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        push(resolveGlobal(module as string, name as string));
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); push(call(fn, args, 'REDUCE')); break; } // REDUCE
      case 0x81: { const args = pop(); const cls = pop(); push(call(cls, args, 'NEWOBJ')); break; } // NEWOBJ
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        // An OrderedDict state dict carries `_metadata` (module versions) as BUILD state: ignored.
        // Tensors/parameters may carry a state too (requires_grad etc.): ignored as well.
        if (!(obj instanceof Map) && !(obj instanceof TorchTensorRef)) fail(`BUILD on a ${describe(obj)}`);
        void state;
        break;
      }
      case 0x51: { const pid = pop(); push(persistentLoad(pid)); break; } // BINPERSID
      default: {
        const ch = op >= 0x20 && op < 0x7f ? ` '${String.fromCharCode(op)}'` : '';
        const known = UNSUPPORTED_OPNAMES[op];
        fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')}${ch}${known ? ` (${known})` : ' (unknown)'}`);
      }
    }
  }

  function resolveGlobal(module: string, name: string): PickleGlobal {
    const g = allowedGlobal(module, name);
    if (!g) {
      return fail(`refuses global '${module} ${name}': only torch state-dict globals (collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch.*Storage, ...) are allowed`);
    }
    return g;
  }
}

/** Short description of a pickle value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return 'None';
  if (v === MARK) return 'MARK';
  if (Array.isArray(v)) return `tuple/list of ${v.length}`;
  if (v instanceof Map) return `dict of ${v.size}`;
  if (v instanceof PickleGlobal) return `global '${v.module} ${v.name}'`;
  if (v instanceof TorchStorageRef) return `storage '${v.key}'`;
  if (v instanceof TorchTensorRef) return 'tensor';
  if (v instanceof TorchDevice) return 'device';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}
