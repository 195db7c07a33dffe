// A Mach-O executable's ad-hoc code signature, checked (and repaired) on Linux.
//
// macOS on Apple silicon kills at launch any arm64 executable whose signature does not match its bytes,
// and Bun's darwin outputs have shipped with broken ones (the embedded module graph written after the
// signature was made). An ad-hoc signature is only hashes: a SuperBlob (big-endian) holding a
// CodeDirectory whose code slots are the hashes of each page of the file up to codeLimit, and special
// slots hashing the other blobs (requirements, entitlements). No certificate, so it can be checked and
// rewritten here without Apple's tools.
import { createHash } from "node:crypto";

const MH_MAGIC_64 = 0xfeedfacf;
const MH_EXECUTE = 2;
const LC_CODE_SIGNATURE = 0x1d;
const CPU = { arm64: 0x0100000c, x64: 0x01000007 } as const;

const CSMAGIC_EMBEDDED_SIGNATURE = 0xfade0cc0;
const CSMAGIC_CODEDIRECTORY = 0xfade0c02;
const CSMAGIC_BLOBWRAPPER = 0xfade0b01;
const CSSLOT_CODEDIRECTORY = 0;
const CSSLOT_ALTERNATE_CODEDIRECTORIES = 0x1000;
const CSSLOT_SIGNATURESLOT = 0x10000;
const CS_ADHOC = 0x2;
const HASH = { 1: "sha1", 2: "sha256" } as Record<number, string>;

export interface CodeDirectory {
  /** Offset of the CodeDirectory blob in the file. */
  offset: number;
  flags: number;
  hashType: string;
  hashSize: number;
  pageSize: number;
  codeLimit: number;
  nCodeSlots: number;
  nSpecialSlots: number;
  /** Offset of code slot 0 in the file (special slot -n is n * hashSize before it). */
  hashesAt: number;
  identifier: string;
}

export interface MachOSignature {
  arch: string;
  /** The signature's place in the file (LC_CODE_SIGNATURE dataoff, datasize). */
  dataoff: number;
  datasize: number;
  /** Every CodeDirectory (the primary and any alternates), with the problems found in each. */
  directories: CodeDirectory[];
  adhoc: boolean;
  /** Empty when every hash matches; one line per mismatch otherwise. */
  problems: string[];
}

/** Reads the header, LC_CODE_SIGNATURE and every CodeDirectory, and compares each hash with the file. */
export function inspectMachO(file: Uint8Array): MachOSignature {
  const le = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (file.length < 32 || le.getUint32(0, true) !== MH_MAGIC_64) throw new Error("not a 64-bit little-endian Mach-O file");
  const cpu = le.getUint32(4, true);
  const arch = Object.entries(CPU).find(([, v]) => v === cpu)?.[0] ?? `cputype 0x${cpu.toString(16)}`;
  if (le.getUint32(12, true) !== MH_EXECUTE) throw new Error(`Mach-O filetype ${le.getUint32(12, true)} is not an executable`);
  const ncmds = le.getUint32(16, true);
  let at = 32;
  let sig: { dataoff: number; datasize: number } | null = null;
  for (let i = 0; i < ncmds; i++) {
    const cmd = le.getUint32(at, true);
    const size = le.getUint32(at + 4, true);
    if (size < 8 || at + size > file.length) throw new Error(`load command ${i} runs past the file`);
    if (cmd === LC_CODE_SIGNATURE) sig = { dataoff: le.getUint32(at + 8, true), datasize: le.getUint32(at + 12, true) };
    at += size;
  }
  if (!sig) throw new Error("no LC_CODE_SIGNATURE: the executable is unsigned (macOS on arm64 will not run it)");
  if (sig.dataoff + sig.datasize > file.length) throw new Error("the code signature runs past the end of the file");

  const be = le; // the same view, read without the little-endian flag: code-signing blobs are big-endian
  const base = sig.dataoff;
  if (be.getUint32(base) !== CSMAGIC_EMBEDDED_SIGNATURE) throw new Error("the code signature is not an embedded-signature SuperBlob");
  const count = be.getUint32(base + 8);
  const blobs = new Map<number, { offset: number; length: number }>();
  for (let i = 0; i < count; i++) {
    const type = be.getUint32(base + 12 + i * 8);
    const offset = base + be.getUint32(base + 16 + i * 8);
    blobs.set(type, { offset, length: be.getUint32(offset + 4) });
  }
  const problems: string[] = [];
  // Bytes after the signature are covered by no hash: what a tool that appends to a signed file leaves.
  const tail = file.length - (sig.dataoff + sig.datasize);
  if (tail > 0) problems.push(`${tail} bytes after the code signature are covered by no hash`);
  const directories: CodeDirectory[] = [];
  for (const [type, blob] of blobs) {
    const isCd = type === CSSLOT_CODEDIRECTORY || (type >= CSSLOT_ALTERNATE_CODEDIRECTORIES && type < CSSLOT_ALTERNATE_CODEDIRECTORIES + 5);
    if (!isCd) continue;
    const cd = readCodeDirectory(be, file, blob.offset);
    directories.push(cd);
    checkCodeDirectory(file, cd, blobs, problems);
  }
  if (directories.length === 0) throw new Error("the code signature has no CodeDirectory");
  const cms = blobs.get(CSSLOT_SIGNATURESLOT);
  // An ad-hoc signature carries no CMS signature, or an empty wrapper where one would go.
  const adhoc = directories.every((d) => (d.flags & CS_ADHOC) !== 0) && (!cms || cms.length <= 8);
  if (cms && be.getUint32(cms.offset) !== CSMAGIC_BLOBWRAPPER) problems.push("the CMS signature slot is not a blob wrapper");
  return { arch, dataoff: sig.dataoff, datasize: sig.datasize, directories, adhoc, problems };
}

function readCodeDirectory(be: DataView, file: Uint8Array, offset: number): CodeDirectory {
  if (be.getUint32(offset) !== CSMAGIC_CODEDIRECTORY) throw new Error(`blob at ${offset} is not a CodeDirectory`);
  const version = be.getUint32(offset + 8);
  const hashType = HASH[file[offset + 37]!];
  if (!hashType) throw new Error(`CodeDirectory hash type ${file[offset + 37]} is not sha1 or sha256`);
  let codeLimit = be.getUint32(offset + 32);
  // Version 0x20300 added a 64-bit code limit, used when the 32-bit one is 0.
  if (version >= 0x20300 && codeLimit === 0) codeLimit = Number(be.getBigUint64(offset + 56));
  const identOffset = be.getUint32(offset + 20);
  const identEnd = file.indexOf(0, offset + identOffset);
  return {
    offset,
    flags: be.getUint32(offset + 12),
    hashType,
    hashSize: file[offset + 36]!,
    pageSize: file[offset + 39] ? 2 ** file[offset + 39]! : 0,
    codeLimit,
    nCodeSlots: be.getUint32(offset + 28),
    nSpecialSlots: be.getUint32(offset + 24),
    hashesAt: offset + be.getUint32(offset + 16),
    identifier: new TextDecoder().decode(file.subarray(offset + identOffset, identEnd)),
  };
}

function checkCodeDirectory(file: Uint8Array, cd: CodeDirectory, blobs: Map<number, { offset: number; length: number }>, problems: string[]): void {
  const expect = expectedCodeSlots(file, cd);
  if (expect.length !== cd.nCodeSlots) problems.push(`${cd.nCodeSlots} code slots for ${expect.length} pages up to codeLimit ${cd.codeLimit}`);
  let bad = 0;
  let first = -1;
  for (let i = 0; i < Math.min(expect.length, cd.nCodeSlots); i++) {
    const stored = file.subarray(cd.hashesAt + i * cd.hashSize, cd.hashesAt + (i + 1) * cd.hashSize);
    if (!equal(stored, expect[i]!)) {
      bad++;
      if (first < 0) first = i;
    }
  }
  if (bad) problems.push(`${cd.hashType} CodeDirectory: ${bad} of ${cd.nCodeSlots} page hashes do not match the file (first: page ${first})`);
  // Special slot n (1-based, stored before slot 0) hashes the blob of type n when there is one.
  for (let n = 1; n <= cd.nSpecialSlots; n++) {
    const stored = file.subarray(cd.hashesAt - n * cd.hashSize, cd.hashesAt - (n - 1) * cd.hashSize);
    const blob = blobs.get(n);
    if (!blob) {
      if (stored.some((b) => b !== 0)) problems.push(`${cd.hashType} CodeDirectory: special slot -${n} names a blob that is not there`);
      continue;
    }
    const want = digest(cd.hashType, file.subarray(blob.offset, blob.offset + blob.length)).subarray(0, cd.hashSize);
    if (!equal(stored, want)) problems.push(`${cd.hashType} CodeDirectory: special slot -${n} does not match its blob`);
  }
}

function expectedCodeSlots(file: Uint8Array, cd: CodeDirectory): Uint8Array[] {
  const page = cd.pageSize || cd.codeLimit;
  const out: Uint8Array[] = [];
  for (let start = 0; start < cd.codeLimit; start += page) {
    out.push(digest(cd.hashType, file.subarray(start, Math.min(start + page, cd.codeLimit))).subarray(0, cd.hashSize));
  }
  return out;
}

/**
 * Rewrites every CodeDirectory's page hashes (in place) so they match the file: what `codesign --sign -`
 * would do for a signature whose layout is right and whose hashes are stale. The code limit must still
 * be the signature's own offset (everything before the signature is covered); anything else is refused.
 */
export function resignAdhoc(file: Uint8Array): MachOSignature {
  const before = inspectMachO(file);
  for (const cd of before.directories) {
    if (cd.codeLimit !== before.dataoff) throw new Error(`CodeDirectory covers ${cd.codeLimit} bytes, not the ${before.dataoff} before the signature`);
    if ((cd.flags & CS_ADHOC) === 0) throw new Error("the signature is not ad hoc; re-signing it would drop its certificate");
    const slots = expectedCodeSlots(file, cd);
    if (slots.length !== cd.nCodeSlots) throw new Error(`${cd.nCodeSlots} code slots for ${slots.length} pages`);
    slots.forEach((h, i) => file.set(h, cd.hashesAt + i * cd.hashSize));
  }
  // The CodeDirectory's own hash changed, which nothing else records: ad-hoc has no CMS blob over it.
  const after = inspectMachO(file);
  if (after.problems.length) throw new Error(`re-signing left problems: ${after.problems.join("; ")}`);
  return after;
}

function digest(type: string, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash(type).update(data).digest());
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
