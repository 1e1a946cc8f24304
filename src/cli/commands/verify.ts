import { basename } from 'node:path';
import type { Btf } from '../../btf/btf.js';
import { applyCoreRelocations } from '../../btf/core.js';
import { programTypeById, programTypeByName } from '../../catalog/program-types.js';
import { isTsbpfError, TsbpfError } from '../../errors.js';
import { decode, type Insn } from '../../isa/insn.js';
import { kernelBtf } from '../../kernel/btf-load.js';
import { isElf } from '../../object/elf.js';
import { type ObjectSpec, type ProgramSpec, readObject } from '../../object/spec.js';
import { verify } from '../../verifier/index.js';
import { formatSourceLine, type ProgramVerifyResult, verifyProgram } from '../../verifier/object.js';
import { type Command, helpOption, parseCommandArgs } from '../command.js';
import { readInput } from '../files.js';

export const verifyCommand: Command = {
  name: 'verify',
  summary: "check programs with tsbpf's verifier, the way the kernel's verifier would (no root needed)",
  usage: `Usage: tsbpf verify OBJ [--prog NAME]... [--log-level 0|1|2] [--unpriv] [--json]
       tsbpf verify --raw FILE --type TYPE [--attach-type N] [--log-level 0|1|2] [--unpriv] [--json]

Verifies every program of the eBPF ELF object OBJ whose SEC() loads by default (or the programs
named with --prog) with the object's maps, global data and BTF func_info, as a loader would give
them to the kernel. CO-RE relocations are applied against /sys/kernel/btf/vmlinux when it exists.
A rejection prints the verifier's reason (the kernel's sentence) and, from the object's .BTF.ext
line info, the C source line of the failing instruction.
  --prog NAME       only this program (repeatable)
  --raw FILE        FILE is raw little-endian bytecode ('-' for standard input), not an object
  --type TYPE       program type of --raw bytecode: a catalog name (xdp, socket_filter...) or number
  --attach-type N   expected attach type of --raw bytecode (number)
  --log-level N     0: the verdict and reason (default); 1: the log of the failing path;
                    2: every instruction with its register state
  --unpriv          verify as an unprivileged user would be (no CAP_BPF / CAP_PERFMON)
  --json            print [{ "program", "ok", "error": { "insn", "message", "sourceLine" }, "stats" }]

Exit status: 0 when every program is accepted, 1 when one is rejected, 2 for unusable input.
`,
  async run(argv, io) {
    let parsed: ReturnType<typeof parse>;
    let results: ProgramVerifyResult[];
    let level: 0 | 1 | 2;
    try {
      parsed = parse(argv);
      level = parsed.level;
      results = parsed.raw !== undefined ? [await verifyRaw(parsed, io)] : verifyObjectFile(parsed);
    } catch (e) {
      // unusable input (bad arguments, unreadable or malformed files): status 2
      if (isTsbpfError(e)) {
        io.stderr(`tsbpf verify: ${e.message}\n${e.code === 'usage' ? `\n${verifyCommand.usage}` : ''}`);
        return 2;
      }
      throw e;
    }
    if (parsed.json) {
      const out = results.map((r) => ({
        program: r.program,
        ok: r.ok,
        ...(r.error ? { error: r.error } : {}),
        stats: r.stats,
        ...(level > 0 ? { log: r.log } : {}),
      }));
      io.stdout(`${JSON.stringify(out, null, 2)}\n`);
    } else {
      for (const r of results) io.stdout(textResult(r, level, results.length > 1));
    }
    return results.every((r) => r.ok) ? 0 : 1;
  },
};

function parse(argv: string[]) {
  const { values, positionals } = parseCommandArgs(
    argv,
    {
      ...helpOption,
      prog: { type: 'string', multiple: true },
      raw: { type: 'string' },
      type: { type: 'string' },
      'attach-type': { type: 'string' },
      'log-level': { type: 'string', default: '0' },
      unpriv: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    { min: 0, max: 1 },
  );
  const levelText = values['log-level'] ?? '0';
  if (!['0', '1', '2'].includes(levelText))
    throw new TsbpfError('usage', `--log-level must be 0, 1 or 2, not '${levelText}'`);
  const level = Number(levelText) as 0 | 1 | 2;
  const raw = values.raw;
  if (raw !== undefined) {
    if (positionals.length > 0)
      throw new TsbpfError('usage', '--raw takes the file: no OBJ argument with it');
    if (values.prog) throw new TsbpfError('usage', '--prog needs an object, not --raw bytecode');
    if (values.type === undefined)
      throw new TsbpfError('usage', '--raw needs --type (xdp, socket_filter, ...)');
  } else {
    if (positionals.length === 0) throw new TsbpfError('usage', 'missing argument: the object file');
    if (values.type !== undefined || values['attach-type'] !== undefined)
      throw new TsbpfError(
        'usage',
        '--type and --attach-type are for --raw bytecode (an object names its types)',
      );
  }
  let attachType: number | undefined;
  if (values['attach-type'] !== undefined) {
    attachType = Number(values['attach-type']);
    if (!Number.isInteger(attachType) || attachType < 0)
      throw new TsbpfError('usage', `--attach-type must be a number, not '${values['attach-type']}'`);
  }
  return {
    path: positionals[0],
    raw,
    type: values.type,
    attachType,
    programs: values.prog,
    level,
    unprivileged: values.unpriv ?? false,
    json: values.json ?? false,
  };
}

function programType(text: string): { id: number; name: string } {
  const byName = programTypeByName(text);
  if (byName) return { id: byName.id, name: byName.name };
  if (/^\d+$/.test(text)) {
    const byId = programTypeById(Number(text));
    if (byId) return { id: byId.id, name: byId.name };
  }
  throw new TsbpfError('usage', `unknown program type '${text}'`);
}

async function verifyRaw(
  p: ReturnType<typeof parse>,
  io: { readStdin: () => Promise<Uint8Array> },
): Promise<ProgramVerifyResult> {
  const path = p.raw as string;
  const t = programType(p.type as string);
  const bytes = path === '-' ? await io.readStdin() : readInput(path);
  if (isElf(bytes)) throw new TsbpfError('usage', `${path} is an ELF object: verify it without --raw`);
  if (bytes.length === 0 || bytes.length % 8 !== 0)
    throw new TsbpfError(
      'decode',
      `${path}: ${bytes.length} bytes is not a whole number of 8-byte instructions`,
    );
  const insns: Insn[] = decode(bytes);
  const r = verify(insns, {
    progType: t.id,
    ...(p.attachType === undefined ? {} : { expectedAttachType: p.attachType }),
    logLevel: p.level,
    unprivileged: p.unprivileged,
  });
  return {
    program: basename(path),
    type: t.name,
    ok: r.ok,
    log: r.log,
    ...(r.error ? { error: r.error } : {}),
    stats: r.stats,
  };
}

/** The program's instructions after CO-RE relocation against the running kernel's BTF, when both exist. */
function relocated(spec: ObjectSpec, prog: ProgramSpec, target: Btf | undefined): Insn[] | undefined {
  if (prog.coreRelos.length === 0 || !spec.btf || !target) return undefined;
  return applyCoreRelocations(prog.insns, prog.coreRelos, spec.btf, target, {
    programs: [{ name: prog.name, slot: 0, slots: prog.slotCount }],
  }).insns;
}

function verifyObjectFile(p: ReturnType<typeof parse>): ProgramVerifyResult[] {
  const path = p.path as string;
  const bytes = readInput(path);
  if (!isElf(bytes))
    throw new TsbpfError('usage', `${path} is not an ELF object (raw bytecode needs --raw FILE --type TYPE)`);
  const spec = readObject(bytes, { path });
  const selected = p.programs
    ? p.programs.map((n) => {
        const prog = spec.programs.find((x) => x.name === n);
        if (!prog)
          throw new TsbpfError(
            'usage',
            `${basename(path)} has no program '${n}' (have: ${spec.programs.map((x) => x.name).join(', ') || 'none'})`,
          );
        return prog;
      })
    : spec.programs.filter((x) => x.autoload);
  if (selected.length === 0) throw new TsbpfError('usage', `${basename(path)} has no programs to verify`);
  // The running kernel's BTF: CO-RE targets, BTF-typed attach points (tp_btf, fentry...) and kfuncs.
  const needsKernelBtf = (x: (typeof selected)[number]) =>
    x.coreRelos.length > 0 ||
    x.sectionFlags.includes('attach_btf') ||
    x.references.some((r) => r.kind === 'kfunc' || r.kind === 'ksym');
  const target = selected.some(needsKernelBtf) ? kernelBtf() : undefined;
  return selected.map((prog) => {
    const insns = relocated(spec, prog, target);
    return verifyProgram(spec, prog, {
      logLevel: p.level,
      unprivileged: p.unprivileged,
      ...(insns ? { insns } : {}),
      ...(target ? { kernelBtf: target } : {}),
    });
  });
}

function textResult(r: ProgramVerifyResult, level: number, many: boolean): string {
  const head = `${r.program}${r.type ? ` (${r.type})` : ''}`;
  const stats = `processed ${r.stats.processed} insns, ${r.stats.totalStates} states`;
  const lines: string[] = [];
  if (level > 0 && r.log) lines.push(r.log.replace(/\n$/, ''));
  if (r.ok) {
    lines.push(`${head}: accepted (${stats})`);
  } else {
    const e = r.error;
    lines.push(`${head}: rejected at insn ${e?.insn ?? 0}${many ? '' : ` (${stats})`}`);
    lines.push(`  ${e?.message ?? ''}`);
    if (e?.sourceLine) lines.push(`  ${formatSourceLine(e.sourceLine)}`);
  }
  return `${lines.join('\n')}\n`;
}
