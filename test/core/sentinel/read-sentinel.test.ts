import {execFileSync, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdirSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import assert from 'node:assert/strict'

import {readSentinel} from '../../../src/core/sentinel/read-sentinel.js'
import {tempDir} from '../../support/temp-dir.js'

const dir = tempDir('comet-read-')
const MODULE = new URL('../../../src/core/sentinel/read-sentinel.js', import.meta.url).href

describe('readSentinel', () => {
  it('hashes a regular file and reports its identity', () => {
    const path = join(dir, 'regular')
    const content = Buffer.from('sentinel content\n')
    writeFileSync(path, content, {mode: 0o640})
    const reading = readSentinel(path)
    assert.equal(reading.kind, 'file')
    if (reading.kind !== 'file') return
    const stats = statSync(path)
    assert.equal(reading.checksum, createHash('sha256').update(content).digest('hex'))
    assert.equal(reading.identity.ino, stats.ino)
    assert.equal(reading.identity.size, content.length)
    assert.equal(reading.identity.mode, 0o640)
  })

  it('hashes a file larger than one read chunk', () => {
    const path = join(dir, 'large')
    const content = Buffer.alloc(600 * 1024 + 7, 'x')
    writeFileSync(path, content)
    const reading = readSentinel(path)
    assert.equal(reading.kind === 'file' && reading.checksum, createHash('sha256').update(content).digest('hex'))
  })

  it('reads a symbolic link as a symlink, without following it', () => {
    const target = join(dir, 'link-target')
    writeFileSync(target, 'target')
    const path = join(dir, 'link')
    symlinkSync(target, path)
    assert.deepEqual(readSentinel(path), {kind: 'symlink'})
  })

  it('reads a dangling symbolic link as a symlink', () => {
    const path = join(dir, 'dangling')
    symlinkSync(join(dir, 'no-such-file'), path)
    assert.deepEqual(readSentinel(path), {kind: 'symlink'})
  })

  it('reads a missing file as missing', () => {
    assert.deepEqual(readSentinel(join(dir, 'absent')), {kind: 'missing'})
  })

  it('reads a file under a missing directory as missing', () => {
    assert.deepEqual(readSentinel(join(dir, 'no-dir', 'absent')), {kind: 'missing'})
  })

  it('reads a directory as not-a-file', () => {
    const path = join(dir, 'a-directory')
    mkdirSync(path)
    assert.deepEqual(readSentinel(path), {kind: 'not-a-file'})
  })

  it('reads a FIFO as not-a-file without hanging', () => {
    const path = join(dir, 'fifo')
    execFileSync('mkfifo', [path])
    // In a child process with a time limit, so that a regression that blocks on open fails instead of hanging the suite.
    const script = `import {readSentinel} from ${JSON.stringify(MODULE)}; process.stdout.write(JSON.stringify(readSentinel(process.env.SENTINEL)))`
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {env: {...process.env, SENTINEL: path}, encoding: 'utf8', timeout: 10_000})
    assert.equal(result.signal, null, 'readSentinel blocked on the FIFO and was killed')
    assert.equal(result.status, 0, result.stderr)
    assert.deepEqual(JSON.parse(result.stdout), {kind: 'not-a-file'})
  })
})
