import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {makeFixture} from '../support/fixture.js'

describe('comet init and verify on the embedded store', () => {
  it('plants the sentinels owner-only, records checksums in the seed layout, and verify exits 0', () => {
    const f = makeFixture()
    const init = f.node.run(['init', '--manifest', f.manifest, '--json'])
    assert.equal(init.status, 0, init.stderr)
    assert.deepEqual(
      init.json.sentinels.map((s: {action: string}) => s.action),
      ['created', 'created', 'recorded'],
    )
    for (const path of f.planted) assert.equal(statSync(path).mode & 0o777, 0o600)
    const comets = JSON.parse(readFileSync(join(f.node.store, 'comets', 'web01.json'), 'utf8')).data
    assert.match(comets[`web01:create:${f.planted[0]}`], /^[0-9a-f]{64}$/)
    assert.match(comets[`web01:already_present:${f.existing}`], /^[0-9a-f]{64}$/)
    assert.equal(comets[`web01:fencing_procedure:${f.existing}`], 'record')
    const fencing = JSON.parse(readFileSync(join(f.node.store, 'fencing', 'record.json'), 'utf8')).data
    assert.match(Buffer.from(fencing.base64code, 'base64').toString(), /^echo "\$COMET_SENTINEL/)
    assert.equal(statSync(f.node.store).mode & 0o777, 0o700)

    const verify = f.node.run(['verify', '--json'])
    assert.equal(verify.status, 0, verify.stderr)
    assert.equal(verify.json.counts.intact, 3)
    assert.deepEqual(f.fenceRuns(), [])
  })

  it('is idempotent: a second init changes nothing in the store or on disk', () => {
    const f = makeFixture()
    assert.equal(f.node.run(['init', '--manifest', f.manifest]).status, 0)
    const before = readFileSync(join(f.node.store, 'comets', 'web01.json'), 'utf8')
    const content = readFileSync(f.planted[0])
    const again = f.node.run(['init', '--manifest', f.manifest, '--json'])
    assert.equal(again.status, 0, again.stderr)
    assert.deepEqual(
      again.json.sentinels.map((s: {action: string}) => s.action),
      ['found', 'found', 'found'],
    )
    assert.equal(readFileSync(join(f.node.store, 'comets', 'web01.json'), 'utf8'), before)
    assert.deepEqual(readFileSync(f.planted[0]), content)
  })

  it('init --dry-run writes nothing and creates no sentinel', () => {
    const f = makeFixture()
    const dry = f.node.run(['init', '--manifest', f.manifest, '--dry-run', '--json'])
    assert.equal(dry.status, 0, dry.stderr)
    assert.deepEqual(
      dry.json.sentinels.map((s: {action: string}) => s.action),
      ['would-create', 'would-create', 'would-record'],
    )
    assert.throws(() => statSync(f.planted[0]), /ENOENT/)
    assert.throws(() => statSync(f.node.store), /ENOENT/)
    assert.throws(() => statSync(f.node.stateDir), /ENOENT/)
  })

  it('a recorded sentinel that is gone is reported as tampered by init, never re-created', async () => {
    const f = makeFixture()
    assert.equal(f.node.run(['init', '--manifest', f.manifest]).status, 0)
    const {rmSync} = await import('node:fs')
    rmSync(f.planted[1])
    const again = f.node.run(['init', '--json'])
    assert.equal(again.status, 1)
    assert.equal(again.json.sentinels.find((s: {path: string}) => s.path === f.planted[1]).action, 'tampered')
    assert.throws(() => statSync(f.planted[1]), /ENOENT/)
  })

  it('a file an interrupted init created (journaled, not yet in the store) is recorded by the next init, not refused', () => {
    const f = makeFixture()
    // What an init killed between creating a sentinel and recording its checksum leaves: the file, and its line
    // in the journal of created files.
    writeFileSync(f.planted[0], 'created by an init that was killed', {mode: 0o600})
    const checksum = createHash('sha256').update('created by an init that was killed').digest('hex')
    const state = join(f.node.stateDir, 'nodes', f.node.node)
    mkdirSync(state, {recursive: true, mode: 0o700})
    chmodSync(f.node.stateDir, 0o700)
    chmodSync(join(f.node.stateDir, 'nodes'), 0o700)
    writeFileSync(join(state, 'created.journal'), `${checksum} ${f.planted[0]}\n`, {mode: 0o600})
    const init = f.node.run(['init', '--manifest', f.manifest, '--json'])
    assert.equal(init.status, 0, init.stderr)
    const entry = init.json.sentinels.find((s: {path: string}) => s.path === f.planted[0])
    assert.deepEqual([entry.action, entry.checksum], ['recorded', checksum])
    assert.equal(existsSync(join(state, 'created.journal')), false, 'folded into identities.json')
    assert.equal(f.node.run(['verify']).status, 0)
  })

  it('without that journal line, a file already at a create path is refused, naming it', () => {
    const f = makeFixture()
    writeFileSync(f.planted[0], 'not ours', {mode: 0o600})
    const init = f.node.run(['init', '--manifest', f.manifest, '--json'])
    assert.equal(init.status, 2)
    assert.match(init.json.sentinels.find((s: {path: string}) => s.path === f.planted[0]).detail, /already exists and comet did not create it/)
  })

  it('verify exits 2 when init never ran for the node, naming the node', () => {
    const f = makeFixture()
    assert.equal(f.node.run(['init', '--manifest', f.manifest]).status, 0)
    const other = f.node.run(['verify'], {COMET_NODE: 'db02'})
    assert.equal(other.status, 2)
    assert.match(other.stderr, /node "db02"/)
  })
})
