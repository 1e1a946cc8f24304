/**
 * Semantic analysis of a parsed script: macro expansion, name resolution (builtins, variables, maps, enum
 * constants), type inference and checking (map key/value consistency, operators, casts, function
 * signatures, printf formats), probe-specific availability (args, argN, retval) and control flow (break,
 * continue, unroll). Errors are reported in bpftrace's words at bpftrace's locations; every expression gets a
 * `type`.
 */
import type {
  AssignMap,
  AssignVar,
  Block,
  Call,
  CStructDef,
  CType,
  Expr,
  MapRef,
  Probe,
  Program,
  Stmt,
  TypeSpec,
} from './ast.js';
import { type Diagnostics, type Loc, spanLoc } from './diagnostics.js';
import { expandMacros } from './macros.js';
import type { ParseResult } from './parser.js';
import { type ProbeSpec, type ProviderName, probeName } from './probes.js';
import { signalNumber } from './signals.js';
import {
  type AggregateKind,
  alignOf,
  BOOL,
  I32,
  I64,
  intType,
  isIntLike,
  NONE,
  type StructField,
  sameType,
  sizeOf,
  stringType,
  type TraceType,
  type TypeProvider,
  typeCategory,
  typeName,
  U8,
  U16,
  U32,
  U64,
  unknown,
} from './types.js';

export interface AnalyseOptions {
  /** Kernel/binary type information (BTF, tracepoint formats, DWARF). */
  types?: TypeProvider;
  /** --unsafe: allow system(), signal(), override()... */
  unsafe?: boolean;
  /** Positional parameters given on the command line ($1...). */
  positionalArgs?: string[];
  /** -c CMD given (enables cpid). */
  childCommand?: boolean;
  /** Strings read with str() are this long (bpftrace's max_strlen, default 64 in v0.17, 1024 later). */
  maxStrlen?: number;
  /**
   * Named program options (`-- --name=value --flag`) for getopt(): name → its text, or true for a bare
   * `--flag`. `help` is left to the caller (print programOptionsHelp() and exit).
   */
  namedArgs?: Record<string, string | true>;
}

/** One getopt() program option: its default, description and the value it takes in this run. */
export interface ProgramOption {
  name: string;
  value: bigint | boolean | string;
  type: TraceType;
  description?: string;
}

/** bpftrace's `--help` text for a program's named options ("HINT: expected program options:" ...). */
export function programOptionsHelp(a: Analysis): string {
  const names = [...a.programOptions.keys()].sort().reverse();
  const lines = names.map((n) => {
    const d = a.programOptions.get(n)?.description;
    return d ? `--${n}: ${d}` : `--${n}`;
  });
  return ['HINT: expected program options:', ...lines].join('\n');
}

export interface MapInfo {
  name: string;
  /** Key type; undefined for a scalar map (`@x = 1`). */
  key: TraceType | undefined;
  value: TraceType;
  /** From `let @x = hash(N);`. */
  mapType?: string;
  maxEntries?: bigint;
  loc: Loc;
}

export interface Analysis {
  program: Program;
  maps: Map<string, MapInfo>;
  /** User-defined C structs and unions by `struct NAME` / `union NAME`. */
  structs: Map<string, TraceType & { kind: 'struct' }>;
  enums: Map<string, { value: bigint; enumName: string }>;
  config: Map<string, bigint | string | boolean>;
  /** getopt() options by name, with the values they take from AnalyseOptions.namedArgs. */
  programOptions: Map<string, ProgramOption>;
  diagnostics: Diagnostics;
}

const CONFIG_NAMES = new Set([
  'cache_user_symbols',
  'cpp_demangle',
  'lazy_symbolication',
  'license',
  'log_size',
  'max_bpf_progs',
  'max_cat_bytes',
  'max_map_keys',
  'max_probes',
  'max_strlen',
  'max_type_res_iterations',
  'missing_probes',
  'on_stack_limit',
  'perf_rb_pages',
  'print_maps_on_exit',
  'show_debug_info',
  'stack_mode',
  'str_trunc_trailer',
  'symbol_source',
  'use_blazesym',
  'unstable_map_decl',
  'unstable_tseries',
  'unstable_addr',
  'unstable_macro',
  'unstable_import',
  'unstable_typeinfo',
]);

const LICENSES = [
  'Dual MIT/GPL',
  'Dual BSD/GPL',
  'Dual MPL/GPL',
  'GPL and additional rights',
  'GPL v2',
  'GPL',
];

export const PROBE_TYPE_NAMES: Record<ProviderName, string> = {
  begin: 'special',
  end: 'special',
  self: 'special',
  test: 'special',
  bench: 'special',
  kprobe: 'kprobe',
  kretprobe: 'kretprobe',
  uprobe: 'uprobe',
  uretprobe: 'uretprobe',
  usdt: 'usdt',
  tracepoint: 'tracepoint',
  rawtracepoint: 'rawtracepoint',
  fentry: 'kfunc',
  fexit: 'kretfunc',
  software: 'software',
  hardware: 'hardware',
  interval: 'interval',
  profile: 'profile',
  watchpoint: 'watchpoint',
  asyncwatchpoint: 'asyncwatchpoint',
  iter: 'iter',
};

/** Builtin values usable as bare identifiers. */
function builtinType(name: string, maxStrlen: number): TraceType | undefined {
  switch (name) {
    case 'pid':
    case 'tid':
    case 'uid':
    case 'gid':
    case 'cpu':
    case 'ncpus':
    case 'numaid':
    case 'rand':
    case 'cpid':
      return U32;
    case 'nsecs':
    case 'elapsed':
    case 'cgroup':
    case 'jiffies':
      return U64;
    case 'usermode':
      return U8;
    case 'comm':
    case 'pcomm':
    case 'leader_comm':
      return stringType(16);
    case 'username':
      return { kind: 'special', name: 'username' };
    case 'probe':
      return { kind: 'special', name: 'probe' };
    case 'probetype':
      return stringType(16);
    case 'func':
      return { kind: 'special', name: 'ksym' };
    case 'kstack':
      return { kind: 'stack', user: false, mode: 'bpftrace', limit: 127 };
    case 'ustack':
      return { kind: 'stack', user: true, mode: 'bpftrace', limit: 127 };
    case 'curtask':
      return { kind: 'pointer', to: { kind: 'struct', tag: 'struct', name: 'task_struct' } };
    case 'ctx':
      return { kind: 'pointer', to: unknown('ctx') };
    case 'retval':
      return I64;
    case 'args':
      return unknown('args');
    case 'config':
      return unknown('config');
  }
  if (/^arg[0-9]+$/.test(name)) return U64;
  if (/^sarg[0-9]+$/.test(name)) return I64;
  void maxStrlen;
  return undefined;
}

const AGGREGATES = new Set<string>([
  'count',
  'sum',
  'avg',
  'min',
  'max',
  'stats',
  'hist',
  'lhist',
  'tseries',
]);

/** Functions that take printf-style formats: name -> index of the format argument. */
const FORMAT_FUNCS: Record<string, number> = { printf: 0, errorf: 0, warnf: 0, debugf: 0, system: 0, cat: 0 };

const UNSAFE = new Set(['system', 'signal', 'override', 'write_user']);

/** Arity of functions: [min, max]. */
const ARITY: Record<string, [number, number]> = {
  printf: [1, 1000],
  errorf: [1, 1000],
  warnf: [1, 1000],
  debugf: [1, 1000],
  system: [1, 1000],
  cat: [1, 1000],
  print: [1, 3],
  time: [0, 1],
  strftime: [2, 2],
  exit: [0, 1],
  signal: [1, 1],
  override: [1, 1],
  clear: [1, 1],
  zero: [1, 1],
  delete: [1, 2],
  has_key: [2, 2],
  len: [1, 1],
  str: [1, 2],
  buf: [1, 2],
  ksym: [1, 1],
  usym: [1, 2],
  kaddr: [1, 1],
  uaddr: [1, 1],
  reg: [1, 1],
  ntop: [1, 2],
  pton: [1, 1],
  strncmp: [3, 3],
  strcontains: [2, 2],
  join: [1, 2],
  path: [1, 2],
  macaddr: [1, 1],
  cgroupid: [1, 1],
  cgroup_path: [1, 2],
  percpu_kaddr: [1, 2],
  kptr: [1, 1],
  uptr: [1, 1],
  bswap: [1, 1],
  skboutput: [4, 4],
  socket_cookie: [1, 1],
  getopt: [1, 3],
  pid: [0, 1],
  tid: [0, 1],
  dw_ustack: [0, 2],
  unwatch: [1, 1],
  write_user: [3, 3],
  strerror: [1, 1],
  signal_name: [1, 1],
  is_err: [1, 1],
  container_of: [3, 3],
  ppid: [0, 1],
  strlen: [1, 1],
  assert: [1, 2],
  config: [0, 0],
  kstack: [0, 2],
  ustack: [0, 2],
  nsecs: [0, 1],
  comm: [0, 1],
  count: [0, 0],
  sum: [1, 1],
  avg: [1, 1],
  min: [1, 1],
  max: [1, 1],
  stats: [1, 1],
  hist: [1, 2],
  lhist: [4, 4],
  tseries: [3, 4],
};

function arityMessage(name: string, n: number, min: number, max: number): string | undefined {
  if (n >= min && n <= max) return undefined;
  const word = (k: number) => (k === 1 ? 'one argument' : `${k} arguments`);
  if (min === max) {
    if (min === 0) return `${name}() requires no arguments (${n} provided)`;
    return `${name}() requires ${word(min)} (${n} provided)`;
  }
  if (n < min) return `${name}() requires at least ${word(min)} (${n} provided)`;
  return `${name}() takes up to ${max} arguments (${n} provided)`;
}

interface Scope {
  vars: Map<string, TraceType>;
  parent: Scope | undefined;
}

interface Ctx {
  probe: Probe | undefined;
  providers: ProviderName[];
  specs: ProbeSpec[];
  loops: number;
  scope: Scope;
  /** All variables ever assigned in this probe (bpftrace v0.17 scoping is per probe). */
  probeVars: Map<string, TraceType>;
}

/** Runs macro expansion and the semantic pass; throws TraceError when the script has errors. */
export function analyse(parsed: ParseResult, options: AnalyseOptions = {}): Analysis {
  const a = new Analyser(parsed, options);
  const result = a.run();
  parsed.diagnostics.throwIfErrors();
  return result;
}

class Analyser {
  private readonly program: Program;
  private readonly diag: Diagnostics;
  private readonly types: TypeProvider;
  private readonly maxStrlen: number;
  private readonly maps = new Map<string, MapInfo>();
  private readonly structs = new Map<string, TraceType & { kind: 'struct' }>();
  private readonly enums = new Map<string, { value: bigint; enumName: string }>();
  private anonEnums = 0;
  private readonly config = new Map<string, bigint | string | boolean>();
  /** Only the final pass reports; the first pass learns map types from assignments anywhere. */
  private final = false;

  constructor(
    parsed: ParseResult,
    private readonly options: AnalyseOptions,
  ) {
    this.program = parsed.program;
    this.diag = parsed.diagnostics;
    this.types = options.types ?? {};
    this.maxStrlen = options.maxStrlen ?? 64;
  }

  private error(message: string, loc: Loc | undefined): void {
    if (this.final) this.diag.error(message, loc);
  }

  private warning(message: string, loc: Loc | undefined): void {
    if (this.final) this.diag.warning(message, loc);
  }

  run(): Analysis {
    const p = this.program;
    expandMacros(p, this.diag);
    this.preamble();
    // Pass 1 learns map types; pass 2 checks and reports.
    for (const final of [false, true]) {
      this.final = final;
      for (const probe of p.probes) this.probe(probe);
    }
    this.checkNamedArgs();
    this.warnUnusedMaps();
    return {
      program: p,
      maps: this.maps,
      structs: this.structs,
      enums: this.enums,
      config: this.config,
      programOptions: this.programOptions,
      diagnostics: this.diag,
    };
  }

  private readonly programOptions = new Map<string, ProgramOption>();

  /** `let @a = hash(1);` with no use of @a: bpftrace warns. */
  private warnUnusedMaps(): void {
    const p = this.program;
    if (p.mapDecls.length === 0) return;
    const used = new Set<string>();
    const visit = (n: unknown): void => {
      if (Array.isArray(n)) {
        for (const x of n) visit(x);
        return;
      }
      if (typeof n !== 'object' || n === null) return;
      const o = n as { kind?: unknown; name?: unknown };
      if (o.kind === 'Map' && typeof o.name === 'string') used.add(o.name);
      for (const [k, v] of Object.entries(n)) if (k !== 'loc' && k !== 'type') visit(v);
    };
    visit(p.probes);
    visit(p.subprogs);
    for (const d of p.mapDecls) if (!used.has(d.name)) this.diag.warning(`Unused map: ${d.name}`, d.loc);
  }

  /** Named arguments no getopt() asks for are errors, as in bpftrace. */
  private checkNamedArgs(): void {
    const given = Object.keys(this.options.namedArgs ?? {}).filter((n) => n !== 'help');
    const unexpected = given.filter((n) => !this.programOptions.has(n));
    if (unexpected.length === 0) return;
    const expected = [...this.programOptions.keys()].map((n) => `--${n}`).join(', ');
    this.diag.error(
      `unexpected program command line options: ${unexpected.map((n) => `--${n}`).join(', ')}\n` +
        `HINT: expected program options: ${expected}`,
    );
  }

  /** getopt("name"[, default[, "description"]]): a constant from the command line or the default. */
  private getopt(e: Call, types: TraceType[]): TraceType {
    const [nameArg, defArg, descArg] = e.args;
    if (nameArg?.kind !== 'String') {
      this.error('getopt() expects a string literal as the option name', e.loc);
      return BOOL;
    }
    const name = nameArg.value;
    const raw = this.options.namedArgs?.[name];
    let value: bigint | boolean | string;
    let type: TraceType;
    const t = types[1];
    if (defArg === undefined || t?.kind === 'bool') {
      const def = defArg?.kind === 'Bool' ? defArg.value : false;
      value = def;
      if (raw === true) value = true;
      else if (raw !== undefined) {
        const r = raw.toLowerCase();
        if (r === 'true' || r === '1') value = true;
        else if (r === 'false' || r === '0') value = false;
        else this.error(`program command line option --${name} invalid boolean (value: ${raw})`, undefined);
      }
      type = BOOL;
    } else if (t?.kind === 'string') {
      const def = defArg.kind === 'String' ? defArg.value : '';
      value = raw === undefined ? def : raw === true ? '' : raw;
      type = stringType(Math.max(def.length, value.length) + 1);
    } else if (t && isIntLike(t)) {
      const def = constIntOf(defArg) ?? 0n;
      value = def;
      if (raw !== undefined) {
        const m = raw === true ? null : /^(-?)(0x[0-9a-f]+|[0-9]+)$/i.exec(raw);
        if (m) value = BigInt(m[2] as string) * (m[1] ? -1n : 1n);
        else this.error(`program command line option --${name} invalid integer (value: ${raw})`, undefined);
      }
      type = value > (1n << 63n) - 1n ? U64 : I64;
    } else {
      this.error('getopt() default must be an integer, a boolean or a string literal', defArg.loc);
      return BOOL;
    }
    const description = descArg?.kind === 'String' ? descArg.value : undefined;
    this.programOptions.set(name, { name, value, type, description });
    return type;
  }

  // ------------------------------------------------------------------------------------ preamble

  private preamble(): void {
    const p = this.program;
    for (const c of p.cDefinitions) {
      if (c.kind === 'CStruct') {
        if (c.def.name !== undefined) {
          this.checkRedefinition(c.def, c.loc);
          this.structs.set(`${c.def.tag} ${c.def.name}`, this.cStruct(c.def));
        }
      } else if (c.kind === 'CEnum') {
        // Anonymous enums get a private name: their values still print symbolically, like bpftrace's.
        const enumName = c.name ?? `(anonymous ${this.anonEnums++})`;
        for (const v of c.values) this.enums.set(v.name, { value: v.value, enumName });
      }
    }
    if (p.config) {
      for (const e of p.config.entries) {
        const name = e.name.toLowerCase().replace(/^bpftrace_/, '');
        if (!CONFIG_NAMES.has(name) && !name.startsWith('unstable_')) {
          this.diag.error(`${e.name}: not a known configuration option`, e.loc);
          continue;
        }
        if (name === 'license' && !LICENSES.includes(String(e.value))) {
          this.diag.error(
            `Invalid value for license. Found: ${String(e.value)}. Valid values: ${LICENSES.join(', ')}`,
            e.loc,
          );
        }
        this.config.set(name, e.value);
      }
    }
    for (const d of p.mapDecls) {
      const valid = ['hash', 'lruhash', 'percpuhash', 'percpulruhash', 'percpuarray', 'array'];
      if (!valid.includes(d.mapType)) this.diag.error(`Invalid bpf map type: ${d.mapType}`, d.loc);
      if (d.maxEntries <= 0n) this.diag.error('Max entries must be greater than 0', d.loc);
      this.maps.set(d.name, {
        name: d.name,
        key: undefined,
        value: NONE,
        mapType: d.mapType,
        maxEntries: d.maxEntries,
        loc: d.loc,
      });
    }
  }

  /**
   * A script's struct that redefines a kernel (BTF) one replaces it, and the kernel's definitions of the types
   * it embeds are not brought in with it (as in bpftrace, where clang then fails): a struct or union field
   * held by value must be defined by the script too.
   */
  private checkRedefinition(def: CStructDef, loc: Loc): void {
    if (def.name === undefined || !this.types.struct?.(def.tag, def.name)) return;
    for (const f of def.fields) {
      let t = f.type;
      while (t.kind === 'array') t = t.of;
      if (t.kind !== 'tagged' || t.tag === 'enum' || t.body || t.name === undefined) continue;
      if (this.structs.has(`${t.tag} ${t.name}`)) continue;
      this.diag.error(
        `C definition error: field '${f.name}' has incomplete type '${t.tag} ${t.name}' (${def.tag} ${def.name} redefines the kernel's, whose member types are then not known: define ${t.tag} ${t.name} as well)`,
        loc,
      );
    }
  }

  /** Lays out a user-defined C struct (x86-64 ABI). */
  private cStruct(def: CStructDef): TraceType & { kind: 'struct' } {
    const fields: StructField[] = [];
    let offset = 0; // bits
    let size = 0; // bits
    let align = 1;
    for (const f of def.fields) {
      const type = this.cType(f.type);
      const bytes = sizeOf(type) ?? 8;
      const a = def.packed ? 1 : Math.max(1, Math.min(8, alignOf(type)));
      align = Math.max(align, a);
      if (def.tag === 'union') {
        fields.push({ name: f.name, type, offset: 0 });
        size = Math.max(size, bytes * 8);
        continue;
      }
      if (f.bits !== undefined) {
        const unit = bytes * 8;
        if (Math.floor(offset / unit) !== Math.floor((offset + f.bits - 1) / unit) || f.bits === 0) {
          offset = Math.ceil(offset / unit) * unit;
        }
        fields.push({
          name: f.name,
          type,
          offset: Math.floor(offset / 8),
          bitOffset: offset % 8,
          bitWidth: f.bits,
        });
        offset += f.bits;
      } else {
        offset = Math.ceil(offset / (a * 8)) * a * 8;
        fields.push({ name: f.name, type, offset: offset / 8 });
        offset += bytes * 8;
      }
      size = Math.max(size, offset);
    }
    const bytes = Math.ceil(Math.ceil(size / 8) / align) * align;
    return { kind: 'struct', tag: def.tag, name: def.name ?? '(anonymous)', size: bytes, fields };
  }

  private cType(t: CType): TraceType {
    switch (t.kind) {
      case 'base':
        return this.namedType(t.words.join(' ')) ?? unknown(t.words.join(' '));
      case 'pointer':
        return { kind: 'pointer', to: this.cType(t.to) };
      case 'array':
        return { kind: 'array', of: this.cType(t.of), length: t.length };
      case 'function':
        return { kind: 'void' };
      case 'tagged':
        if (t.tag === 'enum') return I32;
        if (t.body) return this.cStruct(t.body);
        return this.lookupStruct(t.tag, t.name ?? '') ?? { kind: 'struct', tag: t.tag, name: t.name ?? '' };
    }
  }

  private lookupStruct(tag: 'struct' | 'union', name: string): (TraceType & { kind: 'struct' }) | undefined {
    return this.structs.get(`${tag} ${name}`) ?? this.types.struct?.(tag, name);
  }

  /** Resolves a type name (`uint8`, `unsigned long`, `size_t`). */
  private namedType(name: string): TraceType | undefined {
    const m = /^(u?)int(8|16|32|64)$/.exec(name);
    if (m) return intType(Number(m[2]) as 8 | 16 | 32 | 64, m[1] === '');
    const c: Record<string, TraceType> = {
      bool: BOOL,
      _Bool: BOOL,
      char: intType(8, true),
      'signed char': intType(8, true),
      'unsigned char': U8,
      short: intType(16, true),
      'short int': intType(16, true),
      'unsigned short': U16,
      'unsigned short int': U16,
      int: I32,
      signed: I32,
      'signed int': I32,
      unsigned: U32,
      'unsigned int': U32,
      long: I64,
      'long int': I64,
      'unsigned long': U64,
      'unsigned long int': U64,
      'long long': I64,
      'long long int': I64,
      'unsigned long long': U64,
      'unsigned long long int': U64,
      void: { kind: 'void' },
      string: stringType(this.maxStrlen),
      buffer: { kind: 'buffer', size: this.maxStrlen },
      inet: { kind: 'special', name: 'inet' },
    };
    if (c[name]) return c[name];
    const t = this.types.typedef?.(name);
    if (t) return t;
    const k = /^(?:__)?([us])(8|16|32|64)$/.exec(name) ?? /^u?int(8|16|32|64)_t$/.exec(name);
    if (k) {
      const bits = Number(k[2] ?? k[1]) as 8 | 16 | 32 | 64;
      const signed = k[1] === 's' || (k[0].startsWith('int') && !k[0].startsWith('uint'));
      return intType(bits, signed);
    }
    const fixed: Record<string, TraceType> = {
      size_t: U64,
      ssize_t: I64,
      pid_t: I32,
      uid_t: U32,
      gid_t: U32,
      loff_t: I64,
      off_t: I64,
      umode_t: U16,
      dev_t: U32,
      u_int: U32,
    };
    return fixed[name];
  }

  private resolveType(spec: TypeSpec, ctx: Ctx, errLoc?: Loc): TraceType {
    switch (spec.kind) {
      case 'NamedType': {
        const t = this.namedType(spec.name);
        if (t) return t;
        if (this.types.typedef) this.error(`Unknown type: ${spec.name}`, errLoc ?? spec.loc);
        return unknown(spec.name);
      }
      case 'TaggedType': {
        if (spec.tag === 'enum') {
          return { kind: 'int', bits: 64, signed: false, enumName: spec.name };
        }
        const s = this.lookupStruct(spec.tag, spec.name);
        if (s) return s;
        if (this.types.struct)
          this.error(`Unknown struct/union: '${spec.tag} ${spec.name}'`, errLoc ?? spec.loc);
        return { kind: 'struct', tag: spec.tag, name: spec.name };
      }
      case 'PointerType':
        return { kind: 'pointer', to: this.resolveType(spec.to, ctx, errLoc) };
      case 'ArrayType':
        return { kind: 'array', of: this.resolveType(spec.of, ctx, errLoc), length: spec.length ?? 0 };
      case 'TypeofType': {
        const e = spec.expr;
        if (e.kind === 'Typeof') return this.typeofArg(e.arg, ctx);
        if (e.kind === 'TypeExpr') return this.resolveType(e.spec, ctx);
        return this.expr(e, ctx);
      }
    }
  }

  private typeofArg(arg: Expr | TypeSpec, ctx: Ctx): TraceType {
    if (arg.kind.endsWith('Type')) return this.resolveType(arg as TypeSpec, ctx);
    const e = arg as Expr;
    if (e.kind === 'Identifier' && !builtinType(e.name, 0) && !this.enums.has(e.name)) {
      const t = this.namedType(e.name);
      if (t) return t;
    }
    if (e.kind === 'TypeExpr') return this.resolveType(e.spec, ctx);
    return this.expr(e, ctx);
  }

  // -------------------------------------------------------------------------------------- probes

  private probe(probe: Probe): void {
    const specs = probe.attachPoints.map((a) => a.spec);
    const ctx: Ctx = {
      probe,
      providers: specs.map((s) => s.provider),
      specs,
      loops: 0,
      scope: { vars: new Map(), parent: undefined },
      probeVars: new Map(),
    };
    if (this.final) this.checkProbeCombination(probe);
    if (probe.predicate) {
      const t = this.expr(probe.predicate, ctx);
      if (!isIntLike(t) && t.kind !== 'aggregate' && t.kind !== 'none')
        this.error(`Invalid type for predicate: ${typeName(t)}`, probe.predicate.loc);
    }
    this.block(probe.block, ctx, false);
  }

  private checkProbeCombination(probe: Probe): void {
    const iters = probe.attachPoints.filter((a) => a.spec.provider === 'iter');
    if (iters.length > 0 && probe.attachPoints.length > 1)
      this.diag.error('iter probe type does not support multiple attach points', iters[0].loc);
  }

  // ---------------------------------------------------------------------------------- statements

  private block(b: Block, ctx: Ctx, value: boolean): TraceType {
    const saved = ctx.scope;
    ctx.scope = { vars: new Map(), parent: saved };
    b.stmts.forEach((s, i) => {
      const next = b.stmts[i + 1] ?? b.expr;
      this.stmt(s, ctx);
      if (next && i === b.stmts.findIndex(stmtEnds) && stmtEnds(s))
        this.warning('Unreachable statement', next.loc);
    });
    let t: TraceType = NONE;
    if (b.expr) t = this.expr(b.expr, ctx, { aggregate: value });
    ctx.scope = saved;
    return t;
  }

  private lookupVar(name: string, ctx: Ctx): TraceType | undefined {
    for (let s: Scope | undefined = ctx.scope; s; s = s.parent) {
      const t = s.vars.get(name);
      if (t) return t;
    }
    return ctx.probeVars.get(name);
  }

  private setVar(name: string, t: TraceType, ctx: Ctx, declare: boolean): void {
    let target: Scope | undefined;
    if (!declare) {
      for (let s: Scope | undefined = ctx.scope; s; s = s.parent) {
        if (s.vars.has(name)) {
          target = s;
          break;
        }
      }
    }
    (target ?? ctx.scope).vars.set(name, t);
    ctx.probeVars.set(name, t);
  }

  private stmt(s: Stmt, ctx: Ctx): void {
    switch (s.kind) {
      case 'ExprStmt':
        this.expr(s.expr, ctx, { statement: true });
        return;
      case 'AssignMap':
        this.assignMap(s, ctx);
        return;
      case 'AssignVar':
        this.assignVar(s, ctx);
        return;
      case 'VarDecl': {
        const t = s.typeSpec ? this.resolveType(s.typeSpec, ctx) : unknown('undeclared');
        this.setVar(s.variable.name, t, ctx, true);
        s.variable.type = t;
        return;
      }
      case 'Discard':
        this.expr(s.value, ctx);
        return;
      case 'If': {
        this.condition(s.cond, ctx);
        this.block(s.consequent, ctx, false);
        if (s.alternative?.kind === 'Block') this.block(s.alternative, ctx, false);
        else if (s.alternative) this.stmt(s.alternative, ctx);
        return;
      }
      case 'Unroll': {
        const n = this.constInt(s.count, ctx);
        if (n === undefined) this.error('unroll count must be a positive integer literal', s.count.loc);
        else if (n > 100n) this.error('unroll maximum value is 100', s.loc);
        else if (n < 1n) this.error('unroll minimum value is 1', s.loc);
        this.block(s.body, ctx, false);
        return;
      }
      case 'While':
        this.condition(s.cond, ctx);
        ctx.loops++;
        this.block(s.body, ctx, false);
        ctx.loops--;
        return;
      case 'For': {
        let vt: TraceType;
        if (s.iterable.kind === 'Range') {
          const a = this.expr(s.iterable.start, ctx);
          const b = this.expr(s.iterable.end, ctx);
          for (const [t, e] of [
            [a, s.iterable.start],
            [b, s.iterable.end],
          ] as const) {
            if (!isIntLike(t)) this.error(`Loop range requires an integer (${typeName(t)} provided)`, e.loc);
          }
          vt = isIntLike(a) && a.kind === 'int' ? a : I64;
        } else {
          const info = this.maps.get(s.iterable.name);
          s.iterable.type = info?.value;
          if (!info || info.value.kind === 'none') {
            this.error(`Undefined map: ${s.iterable.name}`, s.iterable.loc);
            vt = unknown('map');
          } else if (info.key === undefined) {
            this.error('Maps used as for-loop expressions must have keys to iterate over', s.iterable.loc);
            vt = unknown('map');
          } else {
            vt = { kind: 'tuple', elems: [info.key, this.readValueType(info.value)] };
          }
        }
        s.variable.type = vt;
        const saved = ctx.scope;
        ctx.scope = { vars: new Map([[s.variable.name, vt]]), parent: saved };
        ctx.probeVars.set(s.variable.name, vt);
        ctx.loops++;
        this.block(s.body, ctx, false);
        ctx.loops--;
        ctx.scope = saved;
        return;
      }
      case 'Jump':
        if (s.jump !== 'return' && ctx.loops === 0) this.error(`${s.jump} used outside of a loop`, s.loc);
        if (s.value) {
          const t = this.expr(s.value, ctx);
          if (!isIntLike(t)) this.error(`Invalid return value type: ${typeName(t)}`, s.value.loc);
        }
        return;
      case 'Import':
        return;
      case 'Block':
        this.block(s, ctx, false);
        return;
    }
  }

  private condition(e: Expr, ctx: Ctx): void {
    const t = this.expr(e, ctx);
    if (!isIntLike(t) && t.kind !== 'aggregate')
      this.error(`Invalid condition in if(): ${typeName(t)}`, e.loc);
  }

  /** Map values of per-cpu aggregates read as integers. */
  private readValueType(t: TraceType): TraceType {
    if (t.kind === 'aggregate' && ['count', 'sum', 'min', 'max', 'avg'].includes(t.fn))
      return t.signed || t.fn === 'avg' ? I64 : U64;
    return t;
  }

  private assignMap(s: AssignMap, ctx: Ctx): void {
    const map = s.map;
    const keyType = this.mapKeys(map, ctx);
    let value: TraceType;
    if (s.op === '=') {
      value = this.expr(s.value, ctx, { aggregate: true });
    } else {
      const cur = this.maps.get(map.name);
      const rhs = this.expr(s.value, ctx);
      const lhs = cur && cur.value.kind !== 'none' ? this.readValueType(cur.value) : I64;
      value = this.binopType(s.op.slice(0, -1), lhs, rhs, s.loc) ?? lhs;
      if (cur && cur.value.kind === 'pointer') value = cur.value;
    }
    this.defineMap(map, keyType, value, map.loc);
    map.type = this.maps.get(map.name)?.value;
  }

  private assignVar(s: AssignVar, ctx: Ctx): void {
    const name = s.variable.name;
    let declared: TraceType | undefined;
    if (s.decl?.typeSpec) declared = this.resolveType(s.decl.typeSpec, ctx);
    const cur = s.decl ? declared : this.lookupVar(name, ctx);
    let value: TraceType;
    if (s.op === '=') {
      value = this.expr(s.value, ctx);
    } else {
      if (cur === undefined) {
        this.error(`Undefined or undeclared variable: ${name}`, s.variable.loc);
      }
      const rhs = this.expr(s.value, ctx);
      value =
        cur?.kind === 'pointer' ? cur : (this.binopType(s.op.slice(0, -1), cur ?? I64, rhs, s.loc) ?? rhs);
    }
    if (value.kind === 'aggregate') {
      this.error(`${value.fn}() should be directly assigned to a map`, s.value.loc);
    }
    if (value.kind === 'none' && s.value.kind === 'Call') {
      this.error(`Invalid expression for assignment: none`, s.value.loc);
    }
    let result = value;
    if (cur !== undefined && cur.kind !== 'unknown') {
      const u = unify(cur, value);
      if (!u) {
        this.error(
          `Type mismatch for ${name}: trying to assign value of type '${typeName(value)}' when variable already contains a value of type '${typeName(cur)}'`,
          s.opLoc,
        );
        result = cur;
      } else {
        result = u;
      }
    }
    this.setVar(name, result, ctx, s.decl !== undefined);
    s.variable.type = result;
  }

  /** Types of map keys (a tuple for several), checking them against earlier uses. */
  private mapKeys(map: MapRef, ctx: Ctx): TraceType | undefined {
    if (!map.keys) return undefined;
    const types = map.keys.map((k) => this.keyType(this.expr(k, ctx), k));
    if (types.length === 1) return types[0];
    return { kind: 'tuple', elems: types };
  }

  private keyType(t: TraceType, e: Expr): TraceType {
    // bpftrace types non-negative integer literals used as keys as unsigned.
    if (e.kind === 'Integer') return e.value >= 0n ? U64 : I64;
    if (t.kind === 'int' && t.enumName !== undefined) return { ...t, bits: 64 };
    if (t.kind === 'int' || t.kind === 'bool') return t.kind === 'bool' ? t : intType(64, t.signed);
    if (t.kind === 'aggregate') return this.readValueType(t);
    return t;
  }

  private keyList(t: TraceType | undefined): string {
    if (t === undefined) return '[]';
    if (t.kind === 'tuple') return `[${t.elems.map(typeName).join(', ')}]`;
    return `[${typeName(t)}]`;
  }

  /** Records (or checks) a map's key and value types. */
  private defineMap(map: MapRef, key: TraceType | undefined, value: TraceType, loc: Loc): void {
    const info = this.maps.get(map.name);
    if (!info || info.value.kind === 'none') {
      this.maps.set(map.name, {
        ...(info ?? {}),
        name: map.name,
        key,
        value,
        loc,
      });
      return;
    }
    this.checkKey(map, info, key);
    const u = unify(info.value, value);
    if (!u) {
      this.error(
        `Type mismatch for ${map.name}: trying to assign value of type '${typeName(value)}' when map already contains a value of type '${typeName(info.value)}'`,
        loc,
      );
    } else {
      info.value = u;
    }
  }

  private checkKey(map: MapRef, info: MapInfo, key: TraceType | undefined, loc: Loc = map.loc): void {
    const ok =
      (key === undefined && info.key === undefined) ||
      (key !== undefined && info.key !== undefined && unify(info.key, key) !== undefined);
    if (!ok) {
      this.error(
        `Argument mismatch for ${map.name}: trying to access with arguments: ${this.keyList(key)} when map expects arguments: ${this.keyList(info.key)}`,
        loc,
      );
    } else if (key && info.key) {
      info.key = unify(info.key, key) ?? info.key;
    }
  }

  // --------------------------------------------------------------------------------- expressions

  private constInt(e: Expr, ctx: Ctx): bigint | undefined {
    switch (e.kind) {
      case 'Integer':
        return e.value;
      case 'Bool':
        return e.value ? 1n : 0n;
      case 'Unop': {
        const v = this.constInt(e.operand, ctx);
        if (v === undefined) return undefined;
        if (e.op === '-') return -v;
        if (e.op === '~') return ~v;
        if (e.op === '!') return v === 0n ? 1n : 0n;
        if (e.op === '+') return v;
        return undefined;
      }
      case 'Binop': {
        const a = this.constInt(e.left, ctx);
        const b = this.constInt(e.right, ctx);
        if (a === undefined || b === undefined) return undefined;
        switch (e.op) {
          case '+':
            return a + b;
          case '-':
            return a - b;
          case '*':
            return a * b;
          case '/':
            return b === 0n ? undefined : a / b;
          case '%':
            return b === 0n ? undefined : a % b;
          case '<<':
            return b < 0n || b > 64n ? undefined : a << b;
          case '>>':
            return b < 0n || b > 64n ? undefined : a >> b;
          case '&':
            return a & b;
          case '|':
            return a | b;
          case '^':
            return a ^ b;
          default:
            return undefined;
        }
      }
      case 'Identifier': {
        const en = this.enums.get(e.name) ?? this.types.enumValue?.(e.name);
        return en?.value;
      }
      case 'Cast':
        return this.constInt(e.expr, ctx);
      case 'Comptime':
        return this.constInt(e.expr, ctx);
      default:
        return undefined;
    }
  }

  expr(e: Expr, ctx: Ctx, flags: { aggregate?: boolean; statement?: boolean } = {}): TraceType {
    const t = this.exprInner(e, ctx, flags);
    e.type = t;
    return t;
  }

  private exprInner(e: Expr, ctx: Ctx, flags: { aggregate?: boolean; statement?: boolean }): TraceType {
    switch (e.kind) {
      case 'Integer':
        return e.value > (1n << 63n) - 1n ? U64 : I64;
      case 'Bool':
        return BOOL;
      case 'String':
        return stringType(e.value.length + 1);
      case 'PositionalParam': {
        const v = this.options.positionalArgs?.[e.index - 1];
        if (v === undefined) return this.options.positionalArgs ? I64 : unknown('positional');
        return /^-?(0x[0-9a-f]+|[0-9]+)$/i.test(v) ? I64 : stringType(v.length + 1);
      }
      case 'ParamCount':
        return I64;
      case 'Variable': {
        const t = this.lookupVar(e.name, ctx);
        if (t === undefined) {
          this.error(`Undefined or undeclared variable: ${e.name}`, e.loc);
          return unknown('undefined');
        }
        return t.kind === 'unknown' && t.what === 'undeclared' ? I64 : t;
      }
      case 'Map': {
        const info = this.maps.get(e.name);
        const key = this.mapKeys(e, ctx);
        if (!info || info.value.kind === 'none') {
          this.error(`Undefined map: ${e.name}`, e.nameLoc);
          return unknown('undefined map');
        }
        this.checkKey(e, info, key);
        return info.value;
      }
      case 'AddrOf': {
        const t = this.expr(e.target, ctx);
        return { kind: 'pointer', to: t, kernel: true };
      }
      case 'Identifier':
        return this.identifier(e, ctx);
      case 'Unop':
        return this.unop(e, ctx);
      case 'Binop': {
        const l = this.expr(e.left, ctx);
        const r = this.expr(e.right, ctx);
        // `str($1 + 1)`: offsets into a positional parameter's string.
        if (e.op === '+' && e.left.kind === 'String' && e.left.positional !== undefined && isIntLike(r))
          return l;
        return this.binopType(e.op, l, r, e.loc) ?? unknown('error');
      }
      case 'Ternary': {
        const c = this.expr(e.cond, ctx);
        if (!isIntLike(c) && c.kind !== 'aggregate' && !(e.consequent === undefined))
          this.error(`Invalid condition in ternary: ${typeName(c)}`, e.cond.loc);
        const a = e.consequent ? this.expr(e.consequent, ctx) : c;
        const b = this.expr(e.alternative, ctx);
        const u = unify(a, b);
        if (!u) {
          this.error(
            `Ternary operator must return the same type: have '${typeCategory(a)}' and '${typeCategory(b)}'`,
            e.loc,
          );
          return a;
        }
        return u;
      }
      case 'IfExpr': {
        this.condition(e.cond, ctx);
        const a = this.block(e.consequent, ctx, true);
        const b =
          e.alternative.kind === 'Block'
            ? this.block(e.alternative, ctx, true)
            : this.expr(e.alternative, ctx);
        const u = unify(a, b);
        if (!u) {
          this.error(`Branches must return the same type: have '${typeName(a)}' and '${typeName(b)}'`, e.loc);
          return a;
        }
        return u;
      }
      case 'BlockExpr':
        return this.block(e.block, ctx, flags.aggregate ?? false);
      case 'Call':
        return this.call(e, ctx, flags);
      case 'Sizeof': {
        const arg = e.arg;
        if (arg.kind === 'TaggedType' && arg.tag !== 'enum') {
          // bpftrace reports an unknown struct in sizeof as an unknown identifier, at the sizeof.
          if (!this.lookupStruct(arg.tag, arg.name) && this.types.struct)
            this.error(`Unknown identifier: '${arg.tag} ${arg.name}'`, e.loc);
          return U64;
        }
        this.typeofArg(arg, ctx);
        return U64;
      }
      case 'Offsetof': {
        let t = this.typeofArg(e.arg, ctx);
        for (const f of e.fields) {
          if (t.kind === 'struct' && t.fields) {
            const field = t.fields.find((x) => x.name === f) ?? anonymousField(t, f);
            if (!field) {
              this.error(`'${typeName(t)}' has no field named '${f}'`, e.loc);
              return U64;
            }
            t = field.type;
          } else if (t.kind === 'struct' || t.kind === 'unknown') {
            return U64;
          } else {
            this.error(`offsetof() expects a struct or union type (${typeName(t)} provided)`, e.loc);
            return U64;
          }
        }
        return U64;
      }
      case 'Typeof':
      case 'Typeinfo':
        return this.typeofArg(e.arg, ctx);
      case 'TypeExpr':
        return this.resolveType(e.spec, ctx);
      case 'Cast':
        return this.cast(e, ctx);
      case 'FieldAccess':
        return this.fieldAccess(e, ctx);
      case 'TupleAccess': {
        const t = this.expr(e.expr, ctx);
        if (t.kind === 'tuple') {
          if (e.index >= t.elems.length) {
            this.error(`Invalid tuple index: ${e.index}. Found ${t.elems.length} elements in tuple.`, e.loc);
            return unknown('error');
          }
          return t.elems[e.index];
        }
        if (t.kind === 'record') {
          if (e.index >= t.fields.length) {
            this.error(`Invalid tuple index: ${e.index}. Found ${t.fields.length} elements in tuple.`, e.loc);
            return unknown('error');
          }
          return t.fields[e.index].type;
        }
        if (t.kind === 'unknown') return t;
        this.error(`Can not access index '${e.index}' on expression of type '${typeName(t)}'`, e.loc);
        return unknown('error');
      }
      case 'ArrayAccess': {
        const t = this.expr(e.expr, ctx);
        const it = this.expr(e.index, ctx);
        if (!isIntLike(it) && it.kind !== 'aggregate')
          this.error(
            `The array index operator [] only accepts integer indices (${typeName(it)} provided)`,
            e.index.loc,
          );
        const idx = this.constInt(e.index, ctx);
        if (t.kind === 'array') {
          if (idx !== undefined && t.length > 0 && (idx < 0n || idx >= BigInt(t.length)))
            this.error(`the index ${idx} is out of bounds for array of size ${t.length}`, e.loc);
          return t.of;
        }
        if (t.kind === 'pointer') return t.to;
        if (t.kind === 'string') return intType(8, true);
        if (t.kind === 'tuple' && idx !== undefined) {
          if (idx >= BigInt(t.elems.length) || idx < 0n) {
            this.error(`Invalid tuple index: ${idx}. Found ${t.elems.length} elements in tuple.`, e.loc);
            return unknown('error');
          }
          return t.elems[Number(idx)];
        }
        if (t.kind === 'unknown' || (t.kind === 'int' && t.bits === 64)) return unknown('element');
        this.error(
          `The array index operator [] can only be used on arrays and pointers, found ${typeName(t)}.`,
          e.loc,
        );
        return unknown('error');
      }
      case 'Tuple':
        return { kind: 'tuple', elems: e.elems.map((x) => this.tupleElem(this.expr(x, ctx), x)) };
      case 'Record': {
        const seen = new Set<string>();
        const fields = e.fields.map((f) => {
          if (seen.has(f.name)) this.error(`Duplicate field name in record: ${f.name}`, f.loc);
          seen.add(f.name);
          return { name: f.name, type: this.tupleElem(this.expr(f.value, ctx), f.value) };
        });
        return { kind: 'record', fields };
      }
      case 'Comptime':
        return this.expr(e.expr, ctx);
    }
  }

  private tupleElem(t: TraceType, e: Expr): TraceType {
    if (t.kind === 'aggregate') return this.readValueType(t);
    // bpftrace sizes integer literals in tuples to the smallest signed type that holds them:
    // sizeof((1, "a")) is 3, not 16.
    const lit =
      e.kind === 'Integer'
        ? e.value
        : e.kind === 'Unop' && e.op === '-' && e.operand.kind === 'Integer'
          ? -e.operand.value
          : undefined;
    if (lit !== undefined && t.kind === 'int') {
      for (const bits of [8, 16, 32] as const)
        if (lit >= -(1n << BigInt(bits - 1)) && lit < 1n << BigInt(bits - 1)) return intType(bits, true);
      return t;
    }
    if (t.kind === 'none') this.error('Invalid expression in tuple: none', e.loc);
    return t;
  }

  private identifier(e: Expr & { kind: 'Identifier' }, ctx: Ctx): TraceType {
    let name = e.name;
    if (name.startsWith('__builtin_')) name = name.slice('__builtin_'.length);
    const t = builtinType(name, this.maxStrlen);
    if (t) {
      this.checkBuiltin(name, e.loc, ctx);
      if (name === 'args') return this.argsType(ctx);
      if (name === 'retval') {
        const rt = ctx.specs.map((s) => this.types.returnType?.(s)).find((x) => x !== undefined);
        return rt ?? (ctx.providers.includes('fexit') ? unknown('retval') : I64);
      }
      if (name === 'config') return configType(configValues(this.config, this.maxStrlen));
      if (name === 'curtask') {
        const ts = this.lookupStruct('struct', 'task_struct');
        return ts ? { kind: 'pointer', to: ts } : t;
      }
      return t;
    }
    const en = this.enums.get(e.name) ?? this.types.enumValue?.(e.name);
    if (en) return { kind: 'int', bits: 64, signed: false, enumName: en.enumName || undefined };
    // Without BTF, an upper-case name may be a kernel enum constant the code generator resolves.
    if (!this.types.enumValue && /^_*[A-Z][A-Z0-9_]*$/.test(e.name)) return unknown(e.name);
    // Names from #included headers (macros like __NR_read) are the preprocessor's business.
    if (this.program.cDefinitions.some((c) => c.kind === 'CInclude' || c.kind === 'CDefine'))
      return unknown(e.name);
    this.error(`Unknown identifier: '${e.name}'`, e.loc);
    return unknown('error');
  }

  private argsType(ctx: Ctx): TraceType {
    for (const s of ctx.specs) {
      const t = this.types.probeArgs?.(s);
      if (t) return t;
    }
    return unknown('args');
  }

  /** Probe-type availability of builtins, with v0.17's messages. */
  private checkBuiltin(name: string, loc: Loc, ctx: Ctx): void {
    const probes = ctx.providers;
    if (probes.length === 0) return;
    const typeNames = () => [...new Set(probes.map((p) => PROBE_TYPE_NAMES[p]))].join(', ');
    if (name === 'retval') {
      if (probes.some((p) => p !== 'kretprobe' && p !== 'uretprobe' && p !== 'fexit'))
        this.error(
          "The retval builtin can only be used with 'kretprobe' and 'uretprobe' and 'kfunc' probes",
          loc,
        );
    } else if (name === 'args') {
      const ok = (p: ProviderName) =>
        p === 'tracepoint' ||
        p === 'rawtracepoint' ||
        p === 'fentry' ||
        p === 'fexit' ||
        p === 'uprobe' ||
        p === 'uretprobe';
      const bad = probes.filter((p) => !ok(p));
      if (bad.length > 0)
        this.error(
          `The args builtin can only be used with tracepoint/kfunc/uprobeprobes (${PROBE_TYPE_NAMES[bad[0]]} used here)`,
          loc,
        );
    } else if (/^s?arg[0-9]+$/.test(name)) {
      const ok = (p: ProviderName) =>
        p === 'kprobe' || p === 'uprobe' || p === 'usdt' || p === 'rawtracepoint';
      if (probes.some((p) => !ok(p)))
        this.error(`The ${name} builtin can only be used with 'kprobes', 'uprobes' and 'usdt' probes`, loc);
    } else if (name === 'cpid') {
      if (!this.options.childCommand) this.error('cpid cannot be used without child command', loc);
    } else if (name === 'func') {
      const ok = (p: ProviderName) =>
        [
          'kprobe',
          'kretprobe',
          'uprobe',
          'uretprobe',
          'fentry',
          'fexit',
          'usdt',
          'rawtracepoint',
          'tracepoint',
        ].includes(p);
      if (probes.some((p) => !ok(p)))
        this.error(`The func builtin can not be used with '${typeNames()}' probes`, loc);
    }
  }

  private unop(e: Expr & { kind: 'Unop' }, ctx: Ctx): TraceType {
    const t = this.expr(e.operand, ctx);
    switch (e.op) {
      case '!':
        if (!isIntLike(t) && t.kind !== 'aggregate')
          this.error(`Invalid type for unary operator '!': ${typeName(t)}`, e.loc);
        return BOOL;
      case '~':
      case '-':
      case '+':
        if (!isIntLike(t) && t.kind !== 'aggregate')
          this.error(`The ${e.op} operator can not be used on expressions of type '${typeName(t)}'`, e.loc);
        if (t.kind === 'int' && e.op === '-') return intType(64, true);
        return t.kind === 'int' ? t : I64;
      case '*':
        if (t.kind === 'pointer') return t.to.kind === 'void' ? U8 : t.to;
        if (t.kind === 'int' || t.kind === 'unknown') return unknown('deref');
        this.error(`Can not dereference type '${typeName(t)}'`, e.loc);
        return unknown('error');
      case '++':
      case '--': {
        const target = e.operand;
        if (target.kind === 'Map') {
          const info = this.maps.get(target.name);
          const key = this.mapKeys(target, ctx);
          if (!info || info.value.kind === 'none') {
            // Maps are implicitly initialised to 0.
            this.defineMap(target, key, I64, target.loc);
            target.type = I64;
            return I64;
          }
          if (!isIntLike(info.value) && info.value.kind !== 'aggregate')
            this.error(
              `The ${e.op} operator can not be used on expressions of type '${typeName(info.value)}'`,
              e.loc,
            );
          return this.readValueType(info.value);
        }
        if (target.kind === 'Variable') {
          if (!isIntLike(t))
            this.error(`The ${e.op} operator can not be used on expressions of type '${typeName(t)}'`, e.loc);
          return t;
        }
        this.error(`The ${e.op} operator must be applied to a map or variable`, e.loc);
        return t;
      }
    }
  }

  /** Result type of a binary operator, or undefined after reporting a mismatch. */
  private binopType(op: string, l: TraceType, r: TraceType, loc: Loc): TraceType | undefined {
    const L = this.readValueType(l);
    const R = this.readValueType(r);
    const mismatch = () => {
      this.error(`Type mismatch for '${op}': comparing '${typeName(l)}' with '${typeName(r)}'`, loc);
      return undefined;
    };
    if (L.kind === 'unknown' || R.kind === 'unknown') {
      if (['==', '!=', '<', '<=', '>', '>=', '&&', '||'].includes(op)) return BOOL;
      return L.kind === 'unknown' ? (R.kind === 'unknown' ? L : R) : L;
    }
    const stringish = (t: TraceType) =>
      t.kind === 'string' ||
      (t.kind === 'special' &&
        ['ksym', 'usym', 'probe', 'username', 'inet', 'strerror', 'signal_name'].includes(t.name)) ||
      (t.kind === 'array' && t.of.kind === 'int' && t.of.bits === 8);
    if (op === '==' || op === '!=') {
      if (isIntLike(L) && isIntLike(R)) return BOOL;
      if (stringish(L) && stringish(R)) return BOOL;
      if (
        L.kind === R.kind &&
        ['buffer', 'array', 'tuple', 'record', 'struct', 'special', 'stack'].includes(L.kind)
      )
        return BOOL;
      return mismatch();
    }
    if (['<', '<=', '>', '>='].includes(op)) {
      if (isIntLike(L) && isIntLike(R)) return BOOL;
      if (L.kind === 'string' && R.kind === 'string') return BOOL;
      return mismatch();
    }
    if (op === '&&' || op === '||') {
      if ((isIntLike(L) || L.kind === 'aggregate') && (isIntLike(R) || R.kind === 'aggregate')) return BOOL;
      return mismatch();
    }
    // Arithmetic and bitwise.
    if (L.kind === 'pointer' && (R.kind === 'int' || R.kind === 'bool') && (op === '+' || op === '-'))
      return L;
    if (R.kind === 'pointer' && (L.kind === 'int' || L.kind === 'bool') && op === '+') return R;
    if (L.kind === 'pointer' && R.kind === 'pointer' && op === '-') return I64;
    if (!isIntLike(L) || !isIntLike(R)) return mismatch();
    const li = L.kind === 'int' ? L : U64;
    const ri = R.kind === 'int' ? R : U64;
    if (li.kind !== 'int' || ri.kind !== 'int') return I64;
    return intType(Math.max(li.bits, ri.bits, 64) as 64, li.signed && ri.signed);
  }

  private cast(e: Expr & { kind: 'Cast' }, ctx: Ctx): TraceType {
    const from = this.readValueType(this.expr(e.expr, ctx));
    const to = this.resolveType(e.to, ctx, e.typeLoc);
    if (to.kind === 'array' && e.to.kind === 'ArrayType') {
      const es = sizeOf(to.of);
      const fs = sizeOf(from);
      if (es !== undefined && fs !== undefined) {
        if (e.to.length === undefined) return { ...to, length: Math.floor(fs / es) };
        if (es * to.length !== fs && from.kind !== 'string')
          this.error(`Cannot cast from '${typeName(from)}' to '${typeName(to)}'`, e.typeLoc);
      }
      return to;
    }
    if (to.kind === 'struct') {
      this.error(`Cannot cast to '${typeName(to)}'`, e.typeLoc);
      return to;
    }
    if ((to.kind === 'int' || to.kind === 'bool' || to.kind === 'pointer') && from.kind !== 'unknown') {
      const ok =
        isIntLike(from) ||
        (from.kind === 'array' && (to.kind === 'int' || to.kind === 'bool')) ||
        from.kind === 'aggregate';
      if (!ok) this.error(`Cannot cast from '${typeName(from)}' to '${typeName(to)}'`, e.typeLoc);
    }
    return to;
  }

  private fieldAccess(e: Expr & { kind: 'FieldAccess' }, ctx: Ctx): TraceType {
    let t = this.expr(e.expr, ctx);
    if (t.kind === 'pointer') t = t.to;
    if (t.kind === 'unknown') return unknown(`${t.what}.${e.field}`);
    if (t.kind === 'record') {
      const f = t.fields.find((x) => x.name === e.field);
      if (!f) {
        this.error(`Record does not contain a field named '${e.field}'`, e.loc);
        return unknown('error');
      }
      return f.type;
    }
    if (t.kind === 'struct') {
      let st: TraceType & { kind: 'struct' } = t;
      if (!st.fields) {
        const resolved = this.lookupStruct(st.tag, st.name);
        if (!resolved?.fields) return unknown(`${st.tag} ${st.name}.${e.field}`);
        st = resolved;
      }
      const fields = st.fields ?? [];
      const f = fields.find((x) => x.name === e.field) ?? anonymousField(st, e.field);
      if (!f) {
        this.error(
          `Struct/union of type '${typeName(st)}' does not contain a field named '${e.field}'`,
          e.loc,
        );
        return unknown('error');
      }
      // char arrays read as strings, like bpftrace.
      if (f.type.kind === 'array' && f.type.of.kind === 'int' && f.type.of.bits === 8 && f.type.of.signed)
        return stringType(f.type.length);
      return f.type;
    }
    this.error(`Can not access field '${e.field}' on expression of type '${typeName(t)}'`, e.loc);
    return unknown('error');
  }

  // -------------------------------------------------------------------------------------- calls

  private call(e: Call, ctx: Ctx, flags: { aggregate?: boolean; statement?: boolean }): TraceType {
    const name = e.name.startsWith('__builtin_') ? e.name.slice('__builtin_'.length) : e.name;
    const args = e.args;
    const arity = ARITY[name];
    if (!arity) {
      // Builtin values may be called: `comm()`, `cpu()`, `elapsed()`.
      if (builtinType(name, this.maxStrlen) && args.length === 0) {
        return this.identifier({ kind: 'Identifier', name, loc: e.loc }, ctx);
      }
      // Functions of imported modules are not known to the front end.
      if (this.program.imports.length === 0) this.error(`Unknown function: ${e.name}`, e.nameLoc);
      for (const a of args) this.expr(a, ctx);
      return unknown('error');
    }
    const arityError =
      name === 'hist' && args.length === 0
        ? 'hist() requires one argument (0 provided)'
        : arityMessage(name, args.length, arity[0], arity[1]);
    if (arityError) {
      this.error(arityError, e.loc);
      for (const a of args) if (a.kind !== 'Identifier') this.expr(a, ctx);
      return AGGREGATES.has(name)
        ? { kind: 'aggregate', fn: name as AggregateKind, signed: true }
        : unknown('error');
    }
    if (UNSAFE.has(name) && !this.options.unsafe)
      this.error(`${name}() is an unsafe function being used in safe mode`, e.loc);

    if (AGGREGATES.has(name)) return this.aggregate(e, name as AggregateKind, ctx, flags);

    // Arguments that are keywords rather than expressions.
    const modeArg = (i: number, modes: string[]): boolean => {
      const a = args[i];
      if (a?.kind === 'Identifier' && modes.includes(a.name)) {
        a.type = NONE;
        return true;
      }
      return false;
    };
    switch (name) {
      case 'kstack':
      case 'ustack': {
        let mode = 'bpftrace';
        let limit = 127;
        let i = 0;
        if (modeArg(0, ['bpftrace', 'perf', 'raw', 'build_id'])) {
          mode = (args[0] as { name: string }).name;
          i = 1;
        }
        if (i < args.length) {
          const n = this.constInt(args[i], ctx);
          this.expr(args[i], ctx);
          if (n === undefined) this.error(`${name}() limit must be an integer literal`, args[i].loc);
          else if (n < 0n || n > 1024n) this.error(`${name}() limit must be between 0 and 1024`, args[i].loc);
          else limit = Number(n);
        }
        return { kind: 'stack', user: name === 'ustack', mode, limit };
      }
      case 'nsecs':
        if (args.length > 0 && !modeArg(0, ['monotonic', 'boot', 'tai', 'sw_tai']))
          this.error('Invalid timestamp mode', args[0].loc);
        return U64;
      case 'comm':
        for (const a of args) this.expr(a, ctx);
        return stringType(16);
      case 'pid':
      case 'tid':
        if (args.length > 0 && !modeArg(0, ['curr_ns', 'init']))
          this.error(`Invalid PID namespace mode`, args[0].loc);
        return U32;
      case 'dw_ustack': {
        for (const a of args) if (a.kind !== 'Identifier') this.expr(a, ctx);
        return { kind: 'stack', user: true, mode: 'bpftrace', limit: 127 };
      }
      case 'config':
        return configType(configValues(this.config, this.maxStrlen));
    }

    // Map-operating functions.
    if (
      ['clear', 'zero', 'delete', 'has_key', 'len'].includes(name) ||
      (name === 'print' && args[0]?.kind === 'Map')
    ) {
      return this.mapFunction(e, name, ctx, flags);
    }

    if (name === 'container_of') {
      const p = this.expr(args[0], ctx);
      if (!isIntLike(p))
        this.error(`container_of() expects a pointer (${typeName(p)} provided)`, args[0].loc);
      const t = this.typeofArg(args[1], ctx);
      if (args[2].kind !== 'Identifier') this.error('container_of() expects a field name', args[2].loc);
      else args[2].type = NONE;
      return { kind: 'pointer', to: t };
    }
    const types = args.map((a) => this.expr(a, ctx));
    const fmtIndex = FORMAT_FUNCS[name];
    if (fmtIndex !== undefined) {
      this.formatCall(e, name, types);
      if (
        name === 'system' ||
        name === 'cat' ||
        name === 'printf' ||
        name === 'errorf' ||
        name === 'warnf' ||
        name === 'debugf'
      )
        return NONE;
    }
    switch (name) {
      case 'print':
        if (types.length > 1) this.error('Non-map print() only takes 1 argument', e.loc);
        return NONE;
      case 'time':
        if (args[0] && args[0].kind !== 'String') this.error('time() expects a string literal', args[0].loc);
        return NONE;
      case 'strftime':
        if (args[0].kind !== 'String')
          this.error('strftime() expects a string literal as the first argument', args[0].loc);
        if (!isIntLike(types[1]))
          this.error(
            `strftime() expects an integer timestamp (${typeCategory(types[1])} provided)`,
            args[1].loc,
          );
        return { kind: 'special', name: 'timestamp' };
      case 'exit':
        if (types[0] && !isIntLike(types[0]))
          this.error(`exit() expects an integer exit code (${typeCategory(types[0])} provided)`, e.loc);
        return NONE;
      case 'signal': {
        if (ctx.providers.some((p) => p === 'begin' || p === 'end'))
          this.error(`signal can not be used with "${ctx.specs[0].written}" probes`, e.loc);
        if (args[0].kind === 'String' && !isSignalName(args[0].value))
          this.error(`${args[0].value} is not a valid signal`, e.loc);
        return NONE;
      }
      case 'override':
        return NONE;
      case 'str': {
        if (!isIntLike(types[0]) && types[0].kind !== 'string' && types[0].kind !== 'array')
          this.error(
            `str() expects an integer or a pointer type as first argument (${typeName(types[0])} provided)`,
            e.loc,
          );
        if (types[1] && !isIntLike(types[1]))
          this.error(
            `str() expects an integer as second argument (${typeCategory(types[1])} provided)`,
            e.loc,
          );
        const n = args[1] ? this.constInt(args[1], ctx) : undefined;
        const max = (this.config.get('max_strlen') as bigint | undefined) ?? BigInt(this.maxStrlen);
        return stringType(Number(n !== undefined && n < max ? n + 1n : max));
      }
      case 'buf': {
        const n = args[1] ? this.constInt(args[1], ctx) : undefined;
        if (types[0].kind === 'array') return { kind: 'buffer', size: sizeOf(types[0]) ?? this.maxStrlen };
        return { kind: 'buffer', size: Number(n ?? BigInt(this.maxStrlen)) };
      }
      case 'ksym':
        return { kind: 'special', name: 'ksym' };
      case 'usym':
        return { kind: 'special', name: 'usym' };
      case 'kaddr':
      case 'uaddr':
        if (
          args[0].kind !== 'String' &&
          !(args[0].kind === 'Call' && args[0].name === 'str' && args[0].args[0]?.kind === 'String')
        )
          this.error(`${name}() expects a string literal`, e.loc);
        return U64;
      case 'reg':
        if (args[0].kind !== 'String') this.error('reg() expects a string literal', e.loc);
        return U64;
      case 'ntop':
        return { kind: 'special', name: 'inet' };
      case 'pton':
        if (args[0].kind !== 'String') this.error('pton() expects a string literal', e.loc);
        else return { kind: 'array', of: U8, length: args[0].value.includes(':') ? 16 : 4 };
        return { kind: 'array', of: U8, length: 4 };
      case 'strncmp':
      case 'strcontains': {
        for (const t of types.slice(0, 2)) {
          if (
            t.kind !== 'string' &&
            t.kind !== 'unknown' &&
            t.kind !== 'special' &&
            !(t.kind === 'array' && t.of.kind === 'int')
          )
            this.error(`${name}() only supports string arguments (${typeCategory(t)} provided)`, e.loc);
        }
        if (name === 'strncmp' && this.constInt(args[2], ctx) === undefined)
          this.error('strncmp() expects an integer literal as the third argument', e.loc);
        return name === 'strncmp' ? I64 : BOOL;
      }
      case 'join':
        return NONE;
      case 'path':
        return stringType(this.maxStrlen);
      case 'macaddr':
        return { kind: 'special', name: 'mac_address' };
      case 'cgroupid':
        return U64;
      case 'cgroup_path':
        return { kind: 'special', name: 'cgroup_path' };
      case 'percpu_kaddr':
        return { kind: 'pointer', to: unknown('percpu') };
      case 'kptr':
      case 'uptr':
      case 'bswap':
        return types[0];
      case 'skboutput':
        return U32;
      case 'socket_cookie':
        return U64;
      case 'getopt':
        return this.getopt(e, types);
      case 'unwatch':
      case 'write_user':
      case 'assert':
        return NONE;
      case 'strerror':
        return { kind: 'special', name: 'strerror' };
      case 'signal_name':
        return { kind: 'special', name: 'signal_name' };
      case 'is_err':
        return BOOL;
      case 'ppid':
        return U32;
      case 'strlen':
        return U64;
    }
    return unknown(name);
  }

  private aggregate(e: Call, fn: AggregateKind, ctx: Ctx, flags: { aggregate?: boolean }): TraceType {
    const types = e.args.map((a) => this.expr(a, ctx));
    if (!flags.aggregate) this.error(`${fn}() should be directly assigned to a map`, e.loc);
    if (types[0] && !isIntLike(types[0]) && types[0].kind !== 'aggregate')
      this.error(`${fn}() only supports integer arguments (${typeCategory(types[0])} provided)`, e.loc);
    if (fn === 'lhist') {
      const names = ['min', 'max', 'step'];
      const vals = e.args.slice(1).map((a) => this.constInt(a, ctx));
      vals.forEach((v, i) => {
        if (v === undefined) this.error(`lhist() ${names[i]} must be a literal integer`, e.args[i + 1].loc);
      });
      const [min, max, step] = vals;
      if (min !== undefined && max !== undefined && step !== undefined) {
        if (step <= 0n) this.error('lhist() step must be >= 1', e.loc);
        else if (min > max) this.error('lhist() min must be less than max', e.loc);
        else if ((max - min) / step > 1000n)
          this.error(
            `lhist() too many buckets, must be <= 1000 (would need ${String((max - min) / step)})`,
            e.loc,
          );
      }
    }
    if (fn === 'tseries') this.tseriesArgs(e, ctx);
    if (fn === 'hist' && e.args[1]) {
      const k = this.constInt(e.args[1], ctx);
      if (k === undefined || k < 0n || k > 5n)
        this.error('hist() second argument must be an integer literal 0-5', e.args[1].loc);
    }
    const signed = types[0] === undefined || types[0].kind !== 'int' || types[0].signed;
    return { kind: 'aggregate', fn, signed };
  }

  /** tseries(v, interval_ns, num_intervals[, agg]): literals only, checked as bpftrace checks them. */
  private tseriesArgs(e: Call, ctx: Ctx): void {
    const interval = e.args[1] ? this.constInt(e.args[1], ctx) : undefined;
    const count = e.args[2] ? this.constInt(e.args[2], ctx) : undefined;
    if (interval === undefined) {
      this.error('tseries: invalid interval_ns value (must be non-negative literal)', e.loc);
      return;
    }
    if (count === undefined) {
      this.error('tseries: invalid num_intervals value (must be non-negative literal)', e.loc);
      return;
    }
    if (interval <= 0n) {
      this.error(`tseries() interval_ns must be >= 1 (${interval} provided)`, e.loc);
      return;
    }
    if (count <= 0n) {
      this.error(`tseries() num_intervals must be >= 1 (${count} provided)`, e.loc);
      return;
    }
    if (count > 1000000n) this.error(`tseries() num_intervals must be < 1000000 (${count} provided)`, e.loc);
    const agg = e.args[3];
    if (agg && (agg.kind !== 'String' || !['avg', 'max', 'min', 'sum'].includes(agg.value))) {
      const given = agg.kind === 'String' ? agg.value : '';
      this.error(
        `tseries() expects one of the following aggregation functions: avg, max, min, sum ("${given}" provided)`,
        e.loc,
      );
    }
  }

  private mapFunction(e: Call, name: string, ctx: Ctx, flags: { statement?: boolean }): TraceType {
    const args = e.args;
    const first = args[0];
    if (first.kind !== 'Map') {
      for (const a of args) this.expr(a, ctx);
      if (name === 'len') {
        const t = first.type;
        if (t && t.kind === 'stack') return I64;
      }
      this.error(`${name}() expects a map to be provided`, e.loc);
      return unknown('error');
    }
    const info = this.maps.get(first.name);
    if (!info || info.value.kind === 'none') {
      // bpftrace v0.17 reports this from the call's start to the map's end.
      this.error(
        `Undefined map: ${first.name}`,
        spanLoc({ ...e.loc, end: e.loc.offset, endLine: e.loc.line, endColumn: e.loc.column }, first.loc),
      );
      for (const a of args.slice(1)) this.expr(a, ctx);
      return name === 'has_key' || name === 'delete' ? BOOL : NONE;
    }
    first.type = info.value;
    switch (name) {
      case 'clear':
      case 'zero':
        if (first.keys) this.error(`${name}() expects a map without explicit keys`, e.loc);
        return NONE;
      case 'print': {
        if (first.keys) {
          this.expr(first, ctx);
          return NONE;
        }
        for (const a of args.slice(1)) {
          this.expr(a, ctx);
          if (this.constInt(a, ctx) === undefined)
            this.error('print() expects integer literal arguments', a.loc);
        }
        return NONE;
      }
      case 'len':
        if (info.key === undefined)
          this.error('len() expects a map with explicit keys (non-scalar map)', e.loc);
        return I64;
      case 'has_key':
      case 'delete': {
        if (name === 'delete' && args.length === 1) {
          // delete(@x[k]) or delete(@scalar)
          this.checkKey(
            first,
            info,
            this.mapKeys(first, ctx),
            spanLoc({ ...e.loc, end: e.loc.offset, endLine: e.loc.line, endColumn: e.loc.column }, first.loc),
          );
          return BOOL;
        }
        if (first.keys)
          this.error(`${name}() expects a map without explicit keys as the first argument`, e.loc);
        if (info.key === undefined) {
          this.error(`${name}() expects a map with explicit keys (non-scalar map)`, e.loc);
          this.expr(args[1], ctx);
          return BOOL;
        }
        const k = this.keyType(this.expr(args[1], ctx), args[1]);
        if (!unify(info.key, k)) {
          this.error(
            `Argument mismatch for ${first.name}: trying to access with arguments: ${this.keyList(k.kind === 'tuple' ? k : k)} when map expects arguments: ${this.keyList(info.key)}`,
            args[1].loc,
          );
        }
        void flags;
        return BOOL;
      }
    }
    return NONE;
  }

  /** printf-style format string checks, with bpftrace v0.17's messages. */
  private formatCall(e: Call, name: string, types: TraceType[]): void {
    let fmt = e.args[0];
    while (fmt.kind === 'BlockExpr' && fmt.block.expr && fmt.block.stmts.length === 0) fmt = fmt.block.expr;
    if (fmt.kind !== 'String') {
      this.error(`${name}() expects a string literal (${typeCategory(types[0])} provided)`, e.loc);
      return;
    }
    const specs = parseFormat(fmt.value);
    if (specs === undefined) {
      this.error(`${name}: Invalid format string`, e.loc);
      return;
    }
    const supplied = e.args.length - 1;
    if (supplied < specs.length) {
      this.error(
        `${name}: Not enough arguments for format string (${supplied} supplied, ${specs.length} expected)`,
        e.loc,
      );
      return;
    }
    if (supplied > specs.length) {
      this.error(
        `${name}: Too many arguments for format string (${supplied} supplied, ${specs.length} expected)`,
        e.loc,
      );
      return;
    }
    specs.forEach((conv, i) => {
      const t = this.readValueType(types[i + 1]);
      if (t.kind === 'unknown') return;
      const integer = isIntLike(t) || t.kind === 'aggregate';
      if ('diouxXcp'.includes(conv)) {
        if (!integer)
          this.error(
            `${name}: %${conv} specifier expects a value of type integer (${typeCategory(t)} supplied)`,
            e.loc,
          );
      } else if (conv === 's') {
        if ((t.kind === 'int' && t.enumName === undefined) || t.kind === 'bool' || t.kind === 'pointer')
          this.error(
            `${name}: %s specifier expects a value of type string (${typeCategory(t)} supplied)`,
            e.loc,
          );
      } else if (conv === 'r') {
        if (t.kind !== 'buffer' && t.kind !== 'string' && t.kind !== 'array')
          this.error(
            `${name}: %r specifier expects a value of type buffer (${typeCategory(t)} supplied)`,
            e.loc,
          );
      }
    });
  }
}

/** Field of an anonymous struct/union member. */
function anonymousField(t: TraceType & { kind: 'struct' }, name: string): StructField | undefined {
  for (const f of t.fields ?? []) {
    const ft = f.type;
    if (f.name === '' && ft.kind === 'struct') {
      const inner = ft.fields?.find((x) => x.name === name) ?? anonymousField(ft, name);
      if (inner) return inner;
    }
  }
  return undefined;
}

/** Conversion characters of a printf format (`%-10s %llu %5.2d %%` -> ['s', 'u', 'd']), undefined if malformed. */
export function parseFormat(fmt: string): string[] | undefined {
  const out: string[] = [];
  const re = /%(%|[-+ #0]*(?:\d+|\*)?(?:\.\d+)?(?:hh|h|ll|l|j|z|t|L)?([a-zA-Z]))/g;
  let m: RegExpExecArray | null;
  let last = 0;
  for (;;) {
    m = re.exec(fmt);
    if (!m) break;
    if (fmt.slice(last, m.index).includes('%')) return undefined;
    last = re.lastIndex;
    if (m[1] === '%') continue;
    out.push(m[2]);
  }
  return out;
}

function isSignalName(s: string): boolean {
  return signalNumber(s) !== undefined;
}

/**
 * What config() returns: the script's config settings over bpftrace's defaults (the ones tsbpf knows), by
 * name. `maxStrlen` is the string size in effect.
 */
export function configValues(
  config: ReadonlyMap<string, bigint | string | boolean>,
  maxStrlen: number,
): { name: string; value: bigint | string | boolean }[] {
  const defaults: Record<string, bigint | string | boolean> = {
    cpp_demangle: true,
    lazy_symbolication: false,
    license: 'GPL',
    log_size: 1000000n,
    max_bpf_progs: 1024n,
    max_cat_bytes: 10240n,
    max_map_keys: 4096n,
    max_probes: 1024n,
    max_strlen: BigInt(maxStrlen),
    on_stack_limit: 32n,
    perf_rb_pages: 64n,
    print_maps_on_exit: true,
    show_debug_info: false,
    stack_mode: 'bpftrace',
    str_trunc_trailer: '..',
  };
  for (const [k, v] of config) if (k in defaults) defaults[k] = v;
  return Object.entries(defaults).map(([name, value]) => ({ name, value }));
}

function configType(values: { name: string; value: bigint | string | boolean }[]): TraceType {
  return {
    kind: 'record',
    fields: values.map(({ name, value }) => ({
      name,
      type:
        typeof value === 'bigint' ? U64 : typeof value === 'boolean' ? BOOL : stringType(value.length + 1),
    })),
  };
}

/**
 * A statement after which nothing runs: exit(), return/break/continue, or a block or if/else every path of
 * which ends so (a macro's body included). Code after it is unreachable, which the kernel rejects.
 */
export function stmtEnds(s: Stmt): boolean {
  switch (s.kind) {
    case 'Jump':
      return true;
    case 'ExprStmt':
      return exprEnds(s.expr);
    case 'Block':
      return blockEnds(s);
    case 'If':
      return (
        blockEnds(s.consequent) &&
        s.alternative !== undefined &&
        (s.alternative.kind === 'If' ? stmtEnds(s.alternative) : blockEnds(s.alternative))
      );
    default:
      return false;
  }
}

function exprEnds(e: Expr): boolean {
  if (e.kind === 'Call') return e.name === 'exit' || e.name === '__builtin_exit';
  if (e.kind === 'BlockExpr') return blockEnds(e.block);
  return false;
}

export function blockEnds(b: Block): boolean {
  return b.stmts.some(stmtEnds) || (b.expr !== undefined && exprEnds(b.expr));
}

/** The common type of two values, or undefined when they cannot share a variable/map/branch. */
export function unify(a: TraceType, b: TraceType): TraceType | undefined {
  if (a.kind === 'unknown') return b;
  if (b.kind === 'unknown') return a;
  if ((a.kind === 'int' || a.kind === 'bool') && (b.kind === 'int' || b.kind === 'bool')) {
    if (a.kind === 'bool' && b.kind === 'bool') return a;
    const ai = a.kind === 'int' ? a : U8;
    const bi = b.kind === 'int' ? b : U8;
    if (ai.kind !== 'int' || bi.kind !== 'int') return a;
    const bits = Math.max(ai.bits, bi.bits) as 8 | 16 | 32 | 64;
    const t = intType(bits, ai.signed || bi.signed);
    // The first type decides, as in bpftrace: `@[1] = 1; @[ONE] = 1` keeps printing numbers.
    const en = ai.enumName;
    return en !== undefined && t.kind === 'int' ? { ...t, enumName: en } : t;
  }
  if (a.kind === 'pointer' && (b.kind === 'pointer' || b.kind === 'int')) return a;
  if (b.kind === 'pointer' && a.kind === 'int') return b;
  if (a.kind !== b.kind) return undefined;
  switch (a.kind) {
    case 'string':
    case 'buffer':
      return { kind: a.kind, size: Math.max(a.size, (b as typeof a).size) };
    case 'tuple': {
      const o = b as typeof a;
      if (a.elems.length !== o.elems.length) return undefined;
      const elems: TraceType[] = [];
      for (let i = 0; i < a.elems.length; i++) {
        const u = unify(a.elems[i], o.elems[i]);
        if (!u) return undefined;
        elems.push(u);
      }
      return { kind: 'tuple', elems };
    }
    case 'record': {
      const o = b as typeof a;
      if (a.fields.length !== o.fields.length) return undefined;
      const fields: { name: string; type: TraceType }[] = [];
      for (const f of a.fields) {
        const g = o.fields.find((x) => x.name === f.name);
        if (!g) return undefined;
        const u = unify(f.type, g.type);
        if (!u) return undefined;
        fields.push({ name: f.name, type: u });
      }
      return { kind: 'record', fields };
    }
    case 'array': {
      const o = b as typeof a;
      if (a.length !== o.length) return undefined;
      const u = unify(a.of, o.of);
      return u ? { kind: 'array', of: u, length: a.length } : undefined;
    }
    default:
      return sameType(a, b) ? a : undefined;
  }
}

/** Convenience: the names of every probe (`probe` builtin values) of a program. */
export function probeNames(program: Program): string[] {
  return program.probes.flatMap((p) => p.attachPoints.map((a) => probeName(a.spec)));
}

export { spanLoc };

/** An integer literal, possibly negated. */
function constIntOf(e: Expr | undefined): bigint | undefined {
  if (e?.kind === 'Integer') return e.value;
  if (e?.kind === 'Unop' && e.op === '-' && e.operand.kind === 'Integer') return -e.operand.value;
  return undefined;
}
