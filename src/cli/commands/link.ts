/**
 * `tsbpf link`: bpftool's `link` subcommands: list|show [LINK], pin LINK FILE, detach LINK.
 * LINK is `id N` or `pinned PATH`.
 */
import { ATTACH_TYPES, LINK_TYPES } from '../../catalog/attach-types.js';
import { programTypeById } from '../../catalog/program-types.js';
import { TsbpfError } from '../../errors.js';
import {
  fdById,
  type LinkInfo,
  linkInfoByFd,
  linkRawTpName,
  objectIds,
  objGet,
  objPin,
  progInfoByFd,
  withFdById,
} from '../../kernel/info.js';
import { closeFd } from '../../kernel/program.js';
import { BPF_CMD, bpfRaw, explainErrno, kernelBuffer } from '../../kernel/syscall.js';
import type { Command, Io } from '../command.js';
import { jsonFlags, printJson } from './prog.js';

function progType(progId: number): string | undefined {
  try {
    return withFdById('prog', progId, (fd) => programTypeById(progInfoByFd(fd).type)?.name);
  } catch {
    return undefined;
  }
}

/** The link's type-specific fields, as bpftool names them. */
function details(info: LinkInfo, fd: number): Record<string, unknown> {
  const v = info.extra;
  const type = LINK_TYPES[info.type];
  const at = (n: number) => ATTACH_TYPES[n] ?? n;
  switch (type) {
    case 'raw_tracepoint':
      return { tp_name: linkRawTpName(fd) };
    case 'cgroup':
      return { cgroup_id: Number(v.getBigUint64(0, true)), attach_type: at(v.getUint32(8, true)) };
    case 'xdp':
      return { ifindex: v.getUint32(0, true) };
    case 'tcx':
    case 'netkit':
      return { ifindex: v.getUint32(0, true), attach_type: at(v.getUint32(4, true)) };
    case 'netns':
      return { netns_ino: v.getUint32(0, true), attach_type: at(v.getUint32(4, true)) };
    case 'tracing':
      return {
        attach_type: at(v.getUint32(0, true)),
        target_obj_id: v.getUint32(4, true),
        target_btf_id: v.getUint32(8, true),
      };
    default:
      return {};
  }
}

function linkJson(info: LinkInfo, fd: number): Record<string, unknown> {
  return {
    id: info.id,
    type: LINK_TYPES[info.type] ?? info.type,
    prog_id: info.progId,
    ...details(info, fd),
  };
}

function linkPlain(info: LinkInfo, fd: number): string {
  let s = `${info.id}: ${LINK_TYPES[info.type] ?? `type ${info.type}`}  prog ${info.progId}  \n`;
  const d = details(info, fd);
  const pt = progType(info.progId);
  const parts: string[] = [];
  if (LINK_TYPES[info.type] === 'tracing' && pt) parts.push(`prog_type ${pt}`);
  for (const [k, val] of Object.entries(d)) {
    if (k === 'target_obj_id' || k === 'target_btf_id') continue;
    parts.push(k === 'tp_name' ? `tp '${val}'` : `${k} ${val}`);
  }
  if (parts.length) s += `\t${parts.join('  ')}  \n`;
  return s;
}

function select(args: string[]): number {
  const [how, what] = args;
  if (how === 'id') return fdById('link', Number(what));
  if (how === 'pinned' && what !== undefined) return objGet(what);
  throw new TsbpfError('usage', 'expected LINK: id LINK_ID | pinned FILE');
}

function show(args: string[], io: Io, json: boolean, pretty: boolean): number {
  const out: Record<string, unknown>[] = [];
  const emit = (fd: number) => {
    const info = linkInfoByFd(fd);
    if (json) out.push(linkJson(info, fd));
    else io.stdout(linkPlain(info, fd));
  };
  if (args.length > 0) {
    const fd = select(args);
    try {
      emit(fd);
    } finally {
      closeFd(fd);
    }
    if (json) printJson(io, out[0], pretty);
    return 0;
  }
  for (const id of objectIds('link')) {
    let fd: number;
    try {
      fd = fdById('link', id);
    } catch {
      continue;
    }
    try {
      emit(fd);
    } finally {
      closeFd(fd);
    }
  }
  if (json) printJson(io, out, pretty);
  return 0;
}

export const linkCommand: Command = {
  name: 'link',
  summary: "inspect and manage links in the kernel (bpftool's link)",
  usage: `Usage: tsbpf link { show | list } [LINK]
       tsbpf link pin LINK FILE
       tsbpf link detach LINK

       LINK := { id LINK_ID | pinned FILE }
       -j/--json, -p/--pretty: JSON output (bpftool's keys)
`,
  async run(argv, io) {
    const { json, pretty, rest } = jsonFlags(argv);
    const [sub, ...args] = rest;
    switch (sub) {
      case undefined:
      case 'show':
      case 'list':
        return show(args, io, json, pretty);
      case 'pin': {
        const fd = select(args);
        try {
          const file = args[2];
          if (file === undefined) throw new TsbpfError('usage', 'expected LINK FILE');
          objPin(fd, file);
        } finally {
          closeFd(fd);
        }
        if (json) io.stdout('null\n');
        return 0;
      }
      case 'detach': {
        const fd = select(args);
        try {
          const attr = kernelBuffer(8);
          new DataView(attr.buffer).setUint32(0, fd, true);
          const r = bpfRaw(BPF_CMD.LINK_DETACH, attr);
          if (r.result < 0)
            throw new TsbpfError('kernel', `link detach failed: ${explainErrno(r.errno)}`, {
              errno: r.errno,
            });
        } finally {
          closeFd(fd);
        }
        if (json) io.stdout('null\n');
        return 0;
      }
      default:
        throw new TsbpfError('usage', `unknown link subcommand '${sub}'`);
    }
  },
};
