export { Btf, type BtfInit } from './btf.js';
export * from './core.js';
export { type CDumpOptions, dumpBtfC } from './dump-c.js';
export { dumpBtfJson, dumpBtfRaw, formatJsonType, formatRawType, type RawDumpOptions } from './dump-raw.js';
export { type EncodeBtfOptions, encodeBtf } from './encode.js';
export {
  type BtfExt,
  type BtfExtCoreRelo,
  type BtfExtFuncInfo,
  type BtfExtLineInfo,
  type BtfExtSection,
  CORE_RELO_KINDS,
  parseBtfExt,
} from './ext.js';
export { BTF_HEADER_LEN, type BtfHeader, type ParseBtfOptions, parseBtf, readBtfHeader } from './parse.js';
export * from './types.js';
export { validateTypes } from './validate.js';
