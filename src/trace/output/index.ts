/**
 * bpftrace's output, byte for byte: map printing (sorted as bpftrace sorts), hist()/lhist() histograms,
 * stats()/avg(), printf's C conversions, strftime, and the `-f json` lines. Pure functions over decoded values
 * (values.ts); the runtime decodes and calls these.
 */
export {
  histIndexLabel,
  histToJson,
  histToText,
  jsonEscape,
  lhistIndexLabel,
  lhistToJson,
  lhistToText,
  mapToJson,
  mapToText,
  Output,
  type OutputFormat,
  sortEntries,
  valueToJson,
  valueToText,
} from './format.js';
export {
  type FormatSpec,
  formatPrintf,
  hexFormatBuffer,
  splitFormat,
  strftime,
  valueToPrintfString,
} from './printf.js';
export * from './values.js';
