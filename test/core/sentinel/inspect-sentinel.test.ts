import {execFileSync} from 'node:child_process'
import {appendFileSync, chmodSync, chownSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import assert from 'node:assert/strict'

import {createSentinel} from '../../../src/core/sentinel/create-sentinel.js'
import {inspectSentinel, inspectSentinelShallow, type Finding} from '../../../src/core/sentinel/inspect-sentinel.js'
import type {FileIdentity} from '../../../src/core/sentinel/read-sentinel.js'
import type {SentinelSpec} from '../../../src/core/topology/topology.js'
import {tempDir} from '../../support/temp-dir.js'

const base = tempDir('comet-inspect-')
let counter = 0

/** A freshly planted sentinel, in a folder of its own, with the record and baseline the agent would keep. */
function plant(): {spec: SentinelSpec; baseline: FileIdentity; directory: string} {
  const directory = join(base, `case-${counter++}`)
  mkdirSync(directory, {mode: 0o700})
  const path = join(directory, '.~lock.ledger.ods#')
  const {checksum, identity} = createSentinel(path)
  return {spec: {path, mode: 'create', checksum, procedure: 'isolate', onRead: 'freeze'}, baseline: identity, directory}
}

function assertTampered(finding: Finding, reason: string): void {
  assert.equal(finding.verdict, 'tampered', JSON.stringify(finding))
  assert.equal(finding.verdict === 'tampered' && finding.reason, reason, JSON.stringify(finding))
}

function assertIntactWithOneWarning(finding: Finding, warning: RegExp): void {
  assert.equal(finding.verdict, 'intact', JSON.stringify(finding))
  assert.equal(finding.warnings.length, 1, JSON.stringify(finding.warnings))
  assert.match(finding.warnings[0], warning)
}

describe('inspectSentinel with a baseline', () => {
  it('finds an untouched sentinel intact, without warnings', () => {
    const {spec, baseline} = plant()
    const finding = inspectSentinel(spec, baseline)
    assert.equal(finding.verdict, 'intact')
    assert.deepEqual(finding.warnings, [])
    assert.equal(finding.verdict === 'intact' && finding.checksum, spec.checksum)
  })

  it('finds appended content: tampered, modified', () => {
    const {spec, baseline} = plant()
    appendFileSync(spec.path, 'encrypted!')
    assertTampered(inspectSentinel(spec, baseline), 'modified')
  })

  it('finds content rewritten in place to the same size: tampered, modified', () => {
    const {spec, baseline} = plant()
    writeFileSync(spec.path, Buffer.alloc(4096, 0x41))
    assertTampered(inspectSentinel(spec, baseline), 'modified')
  })

  it('finds a deleted sentinel: tampered, deleted', () => {
    const {spec, baseline} = plant()
    unlinkSync(spec.path)
    assertTampered(inspectSentinel(spec, baseline), 'deleted')
  })

  it('finds a removed directory: tampered, directory-removed', () => {
    const {spec, baseline, directory} = plant()
    rmSync(directory, {recursive: true})
    assertTampered(inspectSentinel(spec, baseline), 'directory-removed')
  })

  it('finds a file renamed over it with the same content: tampered, replaced', () => {
    const {spec, baseline, directory} = plant()
    const copy = join(directory, 'copy.tmp')
    writeFileSync(copy, readFileSync(spec.path), {mode: 0o600})
    renameSync(copy, spec.path)
    assert.notEqual(statSync(spec.path).ino, baseline.ino)
    assertTampered(inspectSentinel(spec, baseline), 'replaced')
  })

  it('finds a symbolic link in its place: tampered, replaced', () => {
    const {spec, baseline, directory} = plant()
    const kept = join(directory, 'kept')
    renameSync(spec.path, kept)
    symlinkSync(kept, spec.path)
    assertTampered(inspectSentinel(spec, baseline), 'replaced')
  })

  it('finds a FIFO in its place: tampered, replaced', () => {
    const {spec, baseline} = plant()
    unlinkSync(spec.path)
    execFileSync('mkfifo', [spec.path])
    assertTampered(inspectSentinel(spec, baseline), 'replaced')
  })

  it('treats chmod as a warning, not tampering', () => {
    const {spec, baseline} = plant()
    chmodSync(spec.path, 0o644)
    assertIntactWithOneWarning(inspectSentinel(spec, baseline), /mode changed 600 -> 644/)
  })

  it('treats chown to another user as a warning, not tampering', () => {
    const {spec, baseline} = plant()
    chownSync(spec.path, baseline.uid + 4242, baseline.gid)
    assertIntactWithOneWarning(inspectSentinel(spec, baseline), new RegExp(`owner changed ${baseline.uid}:${baseline.gid} -> ${baseline.uid + 4242}:${baseline.gid}`))
  })

  it('treats new timestamps (touch) as a warning, not tampering', () => {
    const {spec, baseline} = plant()
    utimesSync(spec.path, new Date('2001-02-03T04:05:06Z'), new Date('2001-02-03T04:05:06Z'))
    assertIntactWithOneWarning(inspectSentinel(spec, baseline), /mtime changed .* -> 2001-02-03T04:05:06\.000Z/)
  })

  it('reports no metadata warnings without a baseline', () => {
    const {spec} = plant()
    chmodSync(spec.path, 0o644)
    const finding = inspectSentinel(spec)
    assert.equal(finding.verdict, 'intact')
    assert.deepEqual(finding.warnings, [])
  })

  it('reads a sentinel with no recorded checksum as unrecorded', () => {
    const {spec, baseline} = plant()
    assert.equal(inspectSentinel({...spec, checksum: ''}, baseline).verdict, 'unrecorded')
  })

  it('still finds a deleted sentinel with no recorded checksum: tampered, deleted', () => {
    const {spec, baseline} = plant()
    unlinkSync(spec.path)
    assertTampered(inspectSentinel({...spec, checksum: ''}, baseline), 'deleted')
  })
})

describe('inspectSentinelShallow (the periodic check under fanotify)', () => {
  it('takes a sentinel whose metadata matches its baseline as intact without opening it', () => {
    const {spec, baseline} = plant()
    // A record whose checksum the file does not have: only a check that never hashed it can call it intact.
    const finding = inspectSentinelShallow({...spec, checksum: 'f'.repeat(64)}, baseline)
    assert.equal(finding.verdict, 'intact', 'a shallow check trusts matching metadata and does not hash')
  })

  it('reads in full when the metadata differs, and so still finds a content change', () => {
    const {spec, baseline} = plant()
    appendFileSync(spec.path, 'encrypted')
    assertTampered(inspectSentinelShallow(spec, baseline), 'modified')
  })

  it('still finds a deletion and a replacement', () => {
    const first = plant()
    unlinkSync(first.spec.path)
    assertTampered(inspectSentinelShallow(first.spec, first.baseline), 'deleted')
    const second = plant()
    writeFileSync(`${second.spec.path}.new`, readFileSync(second.spec.path))
    renameSync(`${second.spec.path}.new`, second.spec.path)
    assertTampered(inspectSentinelShallow(second.spec, second.baseline), 'replaced')
  })
})
