import {createHash} from 'node:crypto'
import {existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import assert from 'node:assert/strict'

import {SentinelError} from '../../../src/core/errors/index.js'
import {createSentinel} from '../../../src/core/sentinel/create-sentinel.js'
import {tempDir} from '../../support/temp-dir.js'

const base = tempDir('comet-create-')
let counter = 0

function folder(): string {
  const path = join(base, `case-${counter++}`)
  mkdirSync(path, {mode: 0o700})
  return path
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex')
}

function assertSentinelError(action: () => unknown, path: string, problem?: RegExp): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof SentinelError, `expected SentinelError, got ${String(error)}`)
    assert.ok(error.message.includes(path), error.message)
    if (problem) assert.match(error.message, problem)
    return true
  })
}

describe('createSentinel', () => {
  it('creates an owner-only file of 4096 bytes and returns its sha256', () => {
    const path = join(folder(), '.~lock.ledger.ods#')
    const created = createSentinel(path)
    const stats = lstatSync(path)
    assert.ok(stats.isFile())
    assert.equal(stats.mode & 0o7777, 0o600)
    assert.equal(stats.size, 4096)
    assert.equal(created.checksum, sha256(path))
    assert.match(created.checksum, /^[0-9a-f]{64}$/)
  })

  it('returns the identity of the file it created', () => {
    const path = join(folder(), 'aaa-invoices.xlsx')
    const {identity} = createSentinel(path)
    const stats = statSync(path)
    assert.equal(identity.ino, stats.ino)
    assert.equal(identity.dev, stats.dev)
    assert.equal(identity.size, stats.size)
    assert.equal(identity.size, 20 * 1024, 'an .xlsx sentinel has the typical size of one')
    assert.equal(identity.mode, 0o600)
  })

  it('fills each sentinel with different random content', () => {
    const dir = folder()
    const first = createSentinel(join(dir, 'a'))
    const second = createSentinel(join(dir, 'b'))
    assert.notEqual(first.checksum, second.checksum)
    assert.notDeepEqual(readFileSync(join(dir, 'a')), Buffer.alloc(4096))
  })

  it('writes the content it is given', () => {
    const path = join(folder(), 'given')
    const content = Buffer.from('exactly this\n')
    const {checksum} = createSentinel(path, content)
    assert.deepEqual(readFileSync(path), content)
    assert.equal(checksum, createHash('sha256').update(content).digest('hex'))
  })

  it('refuses an existing file and leaves it untouched', () => {
    const path = join(folder(), 'orders.db')
    writeFileSync(path, 'precious data\n', {mode: 0o644})
    assertSentinelError(() => createSentinel(path), path, /already exists/)
    assert.equal(readFileSync(path, 'utf8'), 'precious data\n')
    assert.equal(statSync(path).mode & 0o7777, 0o644)
  })

  it('refuses a symbolic link to a file and never modifies the target', () => {
    const dir = folder()
    const target = join(dir, 'target.txt')
    writeFileSync(target, 'target content\n', {mode: 0o644})
    const path = join(dir, 'sentinel')
    symlinkSync(target, path)
    assertSentinelError(() => createSentinel(path), path)
    assert.ok(lstatSync(path).isSymbolicLink())
    assert.equal(readlinkSync(path), target)
    assert.equal(readFileSync(target, 'utf8'), 'target content\n')
    assert.equal(statSync(target).mode & 0o7777, 0o644)
  })

  it('refuses a dangling symbolic link and does not create its target', () => {
    const dir = folder()
    const target = join(dir, 'nowhere.txt')
    const path = join(dir, 'sentinel')
    symlinkSync(target, path)
    assertSentinelError(() => createSentinel(path), path)
    assert.equal(existsSync(target), false)
    assert.ok(lstatSync(path).isSymbolicLink())
  })

  it('refuses a missing directory and creates none', () => {
    const dir = folder()
    const path = join(dir, 'missing', 'sentinel')
    assertSentinelError(() => createSentinel(path), path, /does not exist/)
    assert.deepEqual(readdirSync(dir), [])
  })

  it('refuses a parent that is a regular file', () => {
    const dir = folder()
    writeFileSync(join(dir, 'file'), 'x')
    const path = join(dir, 'file', 'sentinel')
    assertSentinelError(() => createSentinel(path), path, /not a directory/)
  })

  it('refuses a directory reached through a symbolic link and creates nothing in the real directory', () => {
    const dir = folder()
    const real = join(dir, 'real')
    mkdirSync(real)
    const linked = join(dir, 'linked')
    symlinkSync(real, linked)
    const path = join(linked, 'sentinel')
    assertSentinelError(() => createSentinel(path), path)
    assert.deepEqual(readdirSync(real), [])
  })

  it('refuses a directory below a symbolically linked ancestor', () => {
    const dir = folder()
    mkdirSync(join(dir, 'real', 'sub'), {recursive: true})
    symlinkSync(join(dir, 'real'), join(dir, 'linked'))
    const path = join(dir, 'linked', 'sub', 'sentinel')
    assertSentinelError(() => createSentinel(path), path, /symbolic link/)
    assert.deepEqual(readdirSync(join(dir, 'real', 'sub')), [])
  })
})
