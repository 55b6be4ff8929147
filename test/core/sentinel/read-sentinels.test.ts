import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {chmodSync, mkdirSync, symlinkSync, truncateSync, utimesSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {inspectSentinelShallow, inspectSentinel, inspectSentinels} from '../../../src/core/sentinel/inspect-sentinel.js'
import {readSentinel} from '../../../src/core/sentinel/read-sentinel.js'
import {readSentinels, readSentinelsAsync, statSentinels} from '../../../src/core/sentinel/read-sentinels.js'
import type {SentinelSpec} from '../../../src/core/topology/topology.js'
import {tempDir} from '../../support/temp-dir.js'

const MODULE = new URL('../../../src/core/sentinel/read-sentinels.js', import.meta.url).href

/** Every kind of thing that can stand at a sentinel's path. */
function zoo(): string[] {
  const dir = tempDir('comet-read-many-')
  const paths: string[] = []
  const add = (name: string, make: (path: string) => void) => {
    const path = join(dir, name)
    make(path)
    paths.push(path)
  }
  // Sizes around the SHA-256 block (64 bytes), its padding boundary (55, 56) and the read chunk (256 KiB).
  for (const size of [0, 1, 55, 56, 63, 64, 65, 1000, 256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1, 3_000_001]) add(`file-${size}`, (path) => writeFileSync(path, randomBytes(size)))
  add('mode-640', (path) => writeFileSync(path, 'x', {mode: 0o640}))
  add('old-mtime', (path) => {
    writeFileSync(path, 'y')
    utimesSync(path, new Date('2020-01-02T03:04:05.678Z'), new Date('2020-01-02T03:04:05.678Z'))
  })
  add('missing', () => {})
  add('in-missing-dir/file', () => {})
  add('symlink', (path) => symlinkSync(join(dir, 'file-1'), path))
  add('dangling-symlink', (path) => symlinkSync(join(dir, 'nowhere'), path))
  add('directory', (path) => mkdirSync(path))
  add('fifo', (path) => execFileSync('mkfifo', [path]))
  add('file-under-a-file/x', () => {})
  return paths
}

describe('readSentinels (the checksum addon)', () => {
  it('reads every kind of path exactly as readSentinel() does, one file at a time', () => {
    const paths = zoo()
    // Past 256 paths the addon spreads the work over several threads.
    const many = Array.from({length: 600}, (_, index) => paths[index % paths.length])
    const expected = many.map((path) => readSentinel(path))
    assert.deepEqual(readSentinels(many), expected)
    assert.ok(expected.some((reading) => reading.kind === 'file') && expected.some((reading) => reading.kind === 'symlink') && expected.some((reading) => reading.kind === 'not-a-file') && expected.some((reading) => reading.kind === 'missing'))
  })

  it('says why a file cannot be read, as readSentinel() does (run as nobody: root reads anything)', () => {
    const dir = tempDir('comet-read-denied-')
    const path = join(dir, 'secret')
    writeFileSync(path, 'x')
    chmodSync(path, 0o000)
    chmodSync(dir, 0o755)
    const single = new URL('../../../src/core/sentinel/read-sentinel.js', import.meta.url).href
    const script = `import {readSentinels} from ${JSON.stringify(MODULE)}; import {readSentinel} from ${JSON.stringify(single)}
console.log(JSON.stringify([readSentinels([${JSON.stringify(path)}]), [readSentinel(${JSON.stringify(path)})]]))`
    const asNobody = process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath] : [process.execPath]
    const result = spawnSync(asNobody[0], [...asNobody.slice(1), '--input-type=module', '-e', script], {encoding: 'utf8'})
    assert.equal(result.error, undefined)
    assert.equal(result.status, 0, result.stderr)
    const [many, one] = JSON.parse(result.stdout)
    assert.deepEqual(many, [{kind: 'unreadable', error: `EACCES: permission denied, open '${path}'`}])
    assert.deepEqual(many, one)
  })

  it('readSentinelsAsync() gives the same readings, off the JavaScript thread', async () => {
    const paths = zoo()
    const many = Array.from({length: 600}, (_, index) => paths[index % paths.length])
    assert.deepEqual(await readSentinelsAsync(many), readSentinels(many))
    assert.deepEqual(await readSentinelsAsync([]), [])
  })

  it('a file whose size differs from the recorded one is not read at all: a sentinel grown to 1 TiB costs nothing', () => {
    const dir = tempDir('comet-read-huge-')
    const huge = join(dir, 'huge.db')
    const same = join(dir, 'same.db')
    writeFileSync(huge, 'x')
    truncateSync(huge, 2 ** 40)
    writeFileSync(same, 'y'.repeat(512))
    // In a child with a bound: reading a terabyte of zeros would take far longer than this.
    const single = new URL('../../../src/core/sentinel/read-sentinel.js', import.meta.url).href
    const script = `import {readSentinels} from ${JSON.stringify(MODULE)}; import {readSentinel} from ${JSON.stringify(single)}
console.log(JSON.stringify([readSentinels([${JSON.stringify(huge)}, ${JSON.stringify(same)}], [512, 512]), [readSentinel(${JSON.stringify(huge)}, 512), readSentinel(${JSON.stringify(same)}, 512)]]))`
    for (const env of [{}, {COMET_CHECKSUM_ADDON: '/nonexistent/checksum.node'}]) {
      const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {env: {...process.env, ...env}, encoding: 'utf8', timeout: 20_000})
      assert.equal(result.status, 0, result.stderr || String(result.error))
      const [many, one] = JSON.parse(result.stdout)
      assert.deepEqual(many, one)
      assert.equal(many[0].checksum, '')
      assert.equal(many[0].identity.size, 2 ** 40)
      assert.equal(many[1].checksum, readSentinel(same).kind === 'file' && (readSentinel(same) as {checksum: string}).checksum)
    }
  })

  it('falls back to JavaScript, with the same readings, where the addon is not built', () => {
    const paths = zoo()
    const script = `import {readSentinels} from ${JSON.stringify(MODULE)}; console.log(JSON.stringify(readSentinels(${JSON.stringify(paths)})))`
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {env: {...process.env, COMET_CHECKSUM_ADDON: '/nonexistent/checksum.node'}, encoding: 'utf8'})
    assert.equal(result.status, 0, result.stderr)
    assert.deepEqual(JSON.parse(result.stdout), JSON.parse(JSON.stringify(paths.map((path) => readSentinel(path)))))
  })

  it('statSentinels() takes the identity without opening, and tells a symlink, a directory and a missing path apart', () => {
    const paths = zoo()
    const stats = statSentinels(paths)
    assert.ok(stats, 'the checksum addon must be built')
    const byName = new Map(paths.map((path, index) => [path.split('/').slice(-1)[0], stats[index]]))
    const file = readSentinel(paths[1])
    assert.deepEqual(stats[1], {kind: 'file', identity: file.kind === 'file' ? file.identity : undefined})
    assert.equal(byName.get('symlink')?.kind, 'symlink')
    assert.equal(byName.get('directory')?.kind, 'not-a-file')
    assert.equal(byName.get('missing')?.kind, 'missing')
  })
})

describe('inspectSentinels', () => {
  it('gives the verdicts of inspectSentinel() and inspectSentinelShallow(), sentinel by sentinel', async () => {
    const paths = zoo()
    const readings = paths.map((path) => readSentinel(path))
    const specs: SentinelSpec[] = paths.map((path, index) => {
      const reading = readings[index]
      // Every other intact file is recorded with a wrong checksum, so that both verdicts appear.
      const checksum = reading.kind === 'file' ? (index % 2 === 0 ? reading.checksum : 'f'.repeat(64)) : 'e'.repeat(64)
      return {path, mode: 'already_present', checksum, procedure: 'p', onRead: 'freeze'}
    })
    const baselines = new Map(paths.map((path, index) => {
      const reading = readings[index]
      if (reading.kind !== 'file') return [path, undefined]
      // One baseline with another mode, one with another inode: a warning and a replacement.
      if (path.endsWith('mode-640')) return [path, {...reading.identity, mode: 0o600}]
      if (path.endsWith('file-1000')) return [path, {...reading.identity, ino: reading.identity.ino + 1}]
      return [path, reading.identity]
    }))
    const baselineOf = (path: string) => baselines.get(path)
    assert.deepEqual(inspectSentinels(specs, baselineOf), specs.map((spec) => inspectSentinel(spec, baselineOf(spec.path))))
    assert.deepEqual(inspectSentinels(specs, baselineOf, true), specs.map((spec) => inspectSentinelShallow(spec, baselineOf(spec.path))))
    // Readings taken beforehand, for some of the paths (and one that is no sentinel), give the same verdicts.
    const prefetched = new Map((await readSentinelsAsync([...paths.filter((_, index) => index % 3 === 0), '/nonexistent'])).map((reading, index, all) => [index === all.length - 1 ? '/nonexistent' : paths[index * 3], reading]))
    assert.deepEqual(inspectSentinels(specs, baselineOf, false, prefetched), specs.map((spec) => inspectSentinel(spec, baselineOf(spec.path))))
    const verdicts = new Set(inspectSentinels(specs, baselineOf).map((finding) => finding.verdict))
    assert.deepEqual([...verdicts].sort(), ['intact', 'tampered'])
  })
})
