import {chmodSync, existsSync, mkdirSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import assert from 'node:assert/strict'

import {StoreDataError, UnsafePathError} from '../../../src/core/errors/index.js'
import {FenceLatch} from '../../../src/core/fence/fence-latch.js'
import {tempDir} from '../../support/temp-dir.js'

const base = tempDir('comet-latch-')
let counter = 0

function latchFile(): string {
  const directory = join(base, `case-${counter++}`)
  mkdirSync(directory, {mode: 0o700})
  return join(directory, 'latch.json')
}

describe('FenceLatch procedures', () => {
  it('lets each procedure run once, then refuses it', () => {
    const latch = new FenceLatch(latchFile())
    assert.equal(latch.tryAcquire('isolate', 'inc-1'), true)
    assert.equal(latch.tryAcquire('isolate', 'inc-1'), false)
    assert.equal(latch.tryAcquire('isolate', 'inc-2'), false)
    assert.equal(latch.tryAcquire('stop-db', 'inc-2'), true)
    assert.deepEqual(latch.procedures, ['isolate', 'stop-db'])
  })

  it('starts open when the file does not exist, and creates nothing until persisted', () => {
    const file = latchFile()
    const latch = new FenceLatch(file)
    assert.deepEqual(latch.procedures, [])
    latch.tryAcquire('isolate', 'inc-1')
    assert.equal(existsSync(file), false)
  })

  it('keeps a closed latch across a restart once persisted', () => {
    const file = latchFile()
    const first = new FenceLatch(file)
    first.tryAcquire('isolate', 'inc-1')
    first.persist()
    const second = new FenceLatch(file)
    assert.deepEqual(second.procedures, ['isolate'])
    assert.equal(second.tryAcquire('isolate', 'inc-2'), false)
    assert.equal(second.tryAcquire('stop-db', 'inc-2'), true)
  })

  it('force closes the latch even when it is already closed', () => {
    const file = latchFile()
    const latch = new FenceLatch(file)
    latch.force('isolate', 'inc-1')
    assert.equal(latch.tryAcquire('isolate', 'inc-2'), false)
    latch.force('isolate', 'inc-3')
    assert.deepEqual(latch.procedures, ['isolate'])
  })

  it('reopens every procedure on clear(), also for a later process', () => {
    const file = latchFile()
    const latch = new FenceLatch(file)
    latch.tryAcquire('isolate', 'inc-1')
    latch.tryAcquire('stop-db', 'inc-1')
    latch.persist()
    latch.clear()
    assert.deepEqual(latch.procedures, [])
    assert.equal(new FenceLatch(file).tryAcquire('isolate', 'inc-2'), true)
    assert.equal(latch.tryAcquire('isolate', 'inc-2'), true)
  })

  it('honours a reset made by another process at once, before any reload()', () => {
    const file = latchFile()
    const agent = new FenceLatch(file)
    agent.tryAcquire('isolate', 'inc-1')
    agent.persist()
    new FenceLatch(file).clear()
    assert.equal(agent.tryAcquire('isolate', 'inc-2'), true)
    assert.equal(agent.tryAcquire('isolate', 'inc-3'), false)
  })

  it('a process that missed a reset never writes its old entries back, and keeps those it made after it', async () => {
    const file = latchFile()
    const agent = new FenceLatch(file)
    agent.tryAcquire('isolate', 'inc-1')
    agent.noteTripped('/srv/a', 'deleted')
    agent.persist()
    new FenceLatch(file).clear()
    // Timestamps are compared: make sure the next entry is later than the reset.
    await new Promise((resolve) => setTimeout(resolve, 5))
    agent.noteTripped('/srv/b', 'modified')
    agent.persist()
    const after = new FenceLatch(file)
    assert.deepEqual(after.procedures, [])
    assert.equal(after.hasTripped('/srv/a', 'deleted'), false)
    assert.equal(after.hasTripped('/srv/b', 'modified'), true)
    // A second reset is seen the same way.
    after.clear()
    agent.persist()
    assert.equal(new FenceLatch(file).hasTripped('/srv/b', 'modified'), false)
  })
})

describe('FenceLatch sentinels', () => {
  it('notes a sentinel the first time it trips for a reason', () => {
    const latch = new FenceLatch(latchFile())
    assert.equal(latch.hasTripped('/srv/a', 'modified'), false)
    assert.equal(latch.noteTripped('/srv/a', 'modified'), true)
    assert.equal(latch.hasTripped('/srv/a', 'modified'), true)
    assert.equal(latch.noteTripped('/srv/a', 'modified'), false)
  })

  it('notes the sentinel again when the reason changes', () => {
    const latch = new FenceLatch(latchFile())
    latch.noteTripped('/srv/a', 'modified')
    assert.equal(latch.noteTripped('/srv/a', 'deleted'), true)
    assert.equal(latch.hasTripped('/srv/a', 'deleted'), true)
    assert.equal(latch.hasTripped('/srv/a', 'modified'), false)
  })

  it('keeps sentinels apart', () => {
    const latch = new FenceLatch(latchFile())
    latch.noteTripped('/srv/a', 'modified')
    assert.equal(latch.hasTripped('/srv/b', 'modified'), false)
    assert.equal(latch.noteTripped('/srv/b', 'modified'), true)
  })

  it('remembers tripped sentinels across a restart, and forgets them on clear()', () => {
    const file = latchFile()
    const latch = new FenceLatch(file)
    latch.noteTripped('/srv/a', 'deleted')
    latch.persist()
    const restarted = new FenceLatch(file)
    assert.equal(restarted.hasTripped('/srv/a', 'deleted'), true)
    assert.equal(restarted.noteTripped('/srv/a', 'deleted'), false)
    restarted.clear()
    assert.equal(new FenceLatch(file).hasTripped('/srv/a', 'deleted'), false)
  })
})

describe('FenceLatch file', () => {
  it('is written owner-only (0600)', () => {
    const file = latchFile()
    const latch = new FenceLatch(file)
    latch.tryAcquire('isolate', 'inc-1')
    latch.persist()
    assert.equal(statSync(file).mode & 0o7777, 0o600)
    latch.clear()
    assert.equal(statSync(file).mode & 0o7777, 0o600)
  })

  it('refuses a latch file that is not a JSON object', () => {
    const file = latchFile()
    writeFileSync(file, '[]\n', {mode: 0o600})
    assert.throws(() => new FenceLatch(file), (error: unknown) => error instanceof StoreDataError && error.message.includes(file))
  })

  it('refuses a latch file writable by others', () => {
    const file = latchFile()
    new FenceLatch(file).persist()
    chmodSync(file, 0o666)
    assert.throws(() => new FenceLatch(file), UnsafePathError)
  })
})
