import {existsSync, lstatSync} from 'node:fs'
import {dirname} from 'node:path'

import type {SentinelSpec} from '../topology/topology.js'
import {readSentinel, type FileIdentity, type SentinelReading} from './read-sentinel.js'
import {readSentinels, statSentinels} from './read-sentinels.js'

/** Why a sentinel trips. The procedure sees it as COMET_REASON. */
export type TamperReason = 'modified' | 'deleted' | 'renamed' | 'replaced' | 'directory-removed'

export type Finding =
  | {path: string; verdict: 'intact'; checksum: string; identity: FileIdentity; warnings: string[]}
  | {path: string; verdict: 'tampered'; reason: TamperReason; detail: string; warnings: string[]}
  /** No checksum has been recorded yet: `comet init` has not run for it. */
  | {path: string; verdict: 'unrecorded'; warnings: string[]}
  /** The agent could not read the file, so it cannot say either way. */
  | {path: string; verdict: 'unverifiable'; detail: string; warnings: string[]}

/**
 * Compares a sentinel on disk with its record: content (checksum), existence and identity (dev/ino from the
 * local baseline) fence; mode, owner and mtime changes alone are only warnings, since chmod -R, chown -R and
 * touch are what administrators do every day.
 */
export function inspectSentinel(spec: SentinelSpec, baseline?: FileIdentity): Finding {
  return judge(spec, baseline, readSentinel(spec.path, baseline?.size))
}

/**
 * The periodic check while fanotify guards the sentinels: content cannot change without an open that the guard
 * sees, so a sentinel whose identity, size, mode, owner and mtime match its baseline is taken as intact without
 * being opened (each open by the agent would be one more permission event). Anything else is read in full.
 */
export function inspectSentinelShallow(spec: SentinelSpec, baseline?: FileIdentity): Finding {
  if (baseline && spec.checksum !== '') {
    let stats
    try {
      stats = lstatSync(spec.path)
    } catch {}
    if (
      stats?.isFile() &&
      stats.dev === baseline.dev &&
      stats.ino === baseline.ino &&
      stats.size === baseline.size &&
      stats.mtimeMs === baseline.mtimeMs &&
      (stats.mode & 0o7777) === baseline.mode &&
      stats.uid === baseline.uid &&
      stats.gid === baseline.gid
    )
      return {path: spec.path, verdict: 'intact', checksum: spec.checksum, identity: baseline, warnings: []}
  }
  return inspectSentinel(spec, baseline)
}

/**
 * A full check of many sentinels: the same verdicts as inspectSentinel() and inspectSentinelShallow() one by one,
 * with the files read in bulk (see readSentinels).
 */
export function inspectSentinels(specs: SentinelSpec[], baselineOf: (path: string) => FileIdentity | undefined, shallow = false, prefetched?: Map<string, SentinelReading>): Finding[] {
  const findings = new Array<Finding | undefined>(specs.length)
  let toRead = specs.map((_, index) => index)
  if (shallow) {
    const stats = statSentinels(specs.map((spec) => spec.path))
    if (!stats) return specs.map((spec) => inspectSentinelShallow(spec, baselineOf(spec.path)))
    toRead = []
    specs.forEach((spec, index) => {
      const baseline = baselineOf(spec.path)
      const stat = stats[index]
      if (baseline && spec.checksum !== '' && stat.kind === 'file' && sameIdentity(stat.identity, baseline))
        findings[index] = {path: spec.path, verdict: 'intact', checksum: spec.checksum, identity: baseline, warnings: []}
      else toRead.push(index)
    })
  }
  // Readings taken a moment ago (while the store was read) stand for their paths; the others are read now.
  const unread = prefetched ? toRead.filter((index) => !prefetched.has(specs[index].path)) : toRead
  const readings = readSentinels(
    unread.map((index) => specs[index].path),
    unread.map((index) => baselineOf(specs[index].path)?.size),
  )
  unread.forEach((index, at) => (findings[index] = judge(specs[index], baselineOf(specs[index].path), readings[at])))
  if (prefetched)
    for (const index of toRead) findings[index] ??= judge(specs[index], baselineOf(specs[index].path), prefetched.get(specs[index].path) as SentinelReading)
  return findings as Finding[]
}

function sameIdentity(now: FileIdentity, baseline: FileIdentity): boolean {
  return (
    now.dev === baseline.dev &&
    now.ino === baseline.ino &&
    now.size === baseline.size &&
    now.mtimeMs === baseline.mtimeMs &&
    now.mode === baseline.mode &&
    now.uid === baseline.uid &&
    now.gid === baseline.gid
  )
}

export function judge(spec: SentinelSpec, baseline: FileIdentity | undefined, reading: SentinelReading): Finding {
  const path = spec.path
  switch (reading.kind) {
    case 'missing':
      return existsSync(dirname(path))
        ? {path, verdict: 'tampered', reason: 'deleted', detail: 'the file is gone', warnings: []}
        : {path, verdict: 'tampered', reason: 'directory-removed', detail: `its directory ${dirname(path)} is gone`, warnings: []}
    case 'symlink':
      return {path, verdict: 'tampered', reason: 'replaced', detail: 'replaced by a symbolic link', warnings: []}
    case 'not-a-file':
      return {path, verdict: 'tampered', reason: 'replaced', detail: 'replaced by something that is not a regular file', warnings: []}
    case 'unreadable':
      return {path, verdict: 'unverifiable', detail: `cannot read it: ${reading.error}`, warnings: []}
  }
  if (spec.checksum === '') return {path, verdict: 'unrecorded', warnings: []}
  const {identity} = reading
  if (baseline && (baseline.dev !== identity.dev || baseline.ino !== identity.ino))
    return {path, verdict: 'tampered', reason: 'replaced', detail: `another file now stands at this path (inode ${baseline.ino} -> ${identity.ino})`, warnings: []}
  // checksum '' (not read: the size already differs) never equals a recorded checksum.
  if (reading.checksum !== spec.checksum)
    return {path, verdict: 'tampered', reason: 'modified', detail: `content changed (size ${baseline?.size ?? '?'} -> ${identity.size})`, warnings: []}
  return {path, verdict: 'intact', checksum: reading.checksum, identity, warnings: baseline ? metadataWarnings(baseline, identity) : []}
}

function metadataWarnings(before: FileIdentity, now: FileIdentity): string[] {
  const warnings: string[] = []
  if (before.mode !== now.mode) warnings.push(`mode changed ${before.mode.toString(8)} -> ${now.mode.toString(8)}`)
  if (before.uid !== now.uid || before.gid !== now.gid) warnings.push(`owner changed ${before.uid}:${before.gid} -> ${now.uid}:${now.gid}`)
  if (before.mtimeMs !== now.mtimeMs) warnings.push(`mtime changed ${new Date(before.mtimeMs).toISOString()} -> ${new Date(now.mtimeMs).toISOString()}`)
  return warnings
}
