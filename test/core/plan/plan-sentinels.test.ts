import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, readdirSync, statSync, symlinkSync, watch, writeFileSync} from 'node:fs'
import {basename, dirname, join} from 'node:path'
import {describe, it} from 'node:test'

import {parseManifest} from '../../../src/core/manifest/parse-manifest.js'
import {planSentinels} from '../../../src/core/plan/plan-sentinels.js'
import {readdirOrder} from '../../../src/core/plan/readdir-order.js'
import {RUN_JS} from '../../support/cli.js'
import {tempDir} from '../../support/temp-dir.js'

function tree(): string {
  const root = tempDir()
  mkdirSync(join(root, 'finance', 'archive'), {recursive: true})
  mkdirSync(join(root, 'empty'))
  for (let index = 0; index < 40; index++) writeFileSync(join(root, 'finance', `sheet-${index}.xlsx`), 'x')
  for (let index = 0; index < 5; index++) writeFileSync(join(root, 'finance', 'archive', `dump-${index}.sql`), 'x')
  writeFileSync(join(root, 'readme.txt'), 'x')
  return root
}

/** A directory large enough to be hash-indexed on ext4 (its readdir order is then fixed by the names). */
function largeDirectory(files = 600): string {
  const root = tempDir()
  for (let index = 0; index < files; index++) writeFileSync(join(root, `document-${index}.docx`), 'x')
  return root
}

const PLAN_MODULE = new URL('../../../src/core/plan/plan-sentinels.js', import.meta.url).href

describe('comet plan', () => {
  it('proposes sentinels in every directory with files, 8 % of its files and at least one', async () => {
    const root = tree()
    const plan = await planSentinels({root, fencingCommand: 'true'})
    const perDirectory = (directory: string) => plan.sentinels.filter((s) => s.directory === directory).length
    assert.equal(perDirectory(join(root, 'finance')), 4)
    assert.equal(perDirectory(join(root, 'finance', 'archive')), 1)
    assert.equal(perDirectory(root), 1)
    assert.equal(perDirectory(join(root, 'empty')), 0)
    assert.equal(plan.files, 46)
    assert.equal(plan.directories, 4)
  })

  it('names sentinels after the directory\'s favourite target extensions, never colliding with a file', async () => {
    const root = tree()
    const plan = await planSentinels({root, perDirectory: 3, fencingCommand: 'true'})
    const finance = plan.sentinels.filter((s) => s.directory === join(root, 'finance'))
    assert.equal(finance.length, 3)
    for (const sentinel of finance) assert.match(sentinel.path, /\.xlsx$/)
    for (const sentinel of plan.sentinels.filter((s) => s.directory === join(root, 'finance', 'archive'))) assert.match(sentinel.path, /\.sql$/)
    assert.equal(new Set(plan.sentinels.map((s) => s.path)).size, plan.sentinels.length)
    for (const sentinel of plan.sentinels) assert.ok(!/^sheet-|^dump-/.test(basename(sentinel.path)))
  })

  it('hides names when asked, and never walks through a symlink', async () => {
    const root = tree()
    const outside = tempDir()
    writeFileSync(join(outside, 'secret.docx'), 'x')
    symlinkSync(outside, join(root, 'link'))
    const plan = await planSentinels({root, hidden: true, fencingCommand: 'true'})
    for (const sentinel of plan.sentinels) {
      assert.ok(basename(sentinel.path).startsWith('.'))
      assert.ok(sentinel.path.startsWith(root + '/'))
      assert.ok(!dirname(sentinel.path).includes('link'))
    }
  })

  it('chooses names that an encryptor walking in readdir order meets first, and leaves the directory as it found it', async () => {
    const root = largeDirectory()
    const before = readdirSync(root).sort()
    const plan = await planSentinels({root, fencingCommand: 'true'})
    assert.equal(plan.probed, 1)
    assert.deepEqual(readdirSync(root).sort(), before, 'the probe files must all be gone')
    assert.equal(plan.sentinels.length, 48)
    // Planted as comet init would plant them, the sentinels sit at the front of the order: the earliest 48 of 384
    // candidates among 984 names. At random places, half of them would come after the 324th of 648 entries.
    for (const sentinel of plan.sentinels) writeFileSync(sentinel.path, 'sentinel')
    const order = readdirOrder(root)
    const positions = plan.sentinels.map((sentinel) => order.indexOf(basename(sentinel.path))).sort((a, b) => a - b)
    const median = positions[positions.length >> 1]
    assert.ok(median < order.length / 4, `median position of the sentinels ${median} of ${order.length}`)
  })

  it('with --no-probe, writes nothing at all', async () => {
    const root = largeDirectory(50)
    const mtime = statSync(root).mtimeMs
    const plan = await planSentinels({root, fencingCommand: 'true', probeOrder: false})
    assert.equal(plan.probed, 0)
    assert.equal(plan.sentinels.length, 4)
    assert.equal(statSync(root).mtimeMs, mtime)
  })

  it('in a directory it may not write, proposes names without probing', async () => {
    const root = largeDirectory(50)
    chmodSync(root, 0o755)
    // root writes anywhere: the plan is made as nobody, in a child process.
    const script = `import {planSentinels} from ${JSON.stringify(PLAN_MODULE)}
const plan = await planSentinels({root: ${JSON.stringify(root)}, fencingCommand: 'true'})
console.log(JSON.stringify({probed: plan.probed, sentinels: plan.sentinels.length}))`
    const result = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', script], {encoding: 'utf8'})
    assert.equal(result.status, 0, result.stderr)
    assert.deepEqual(JSON.parse(result.stdout), {probed: 0, sentinels: 4})
    assert.equal(readdirSync(root).length, 50)
  })

  it('prints a manifest that comet init accepts as it is', async () => {
    const root = tree()
    const plan = await planSentinels({root, node: 'files01', fencingCommand: 'systemctl stop smbd'})
    const manifest = parseManifest('plan.yaml', plan.manifest)
    assert.equal(manifest.node, 'files01')
    assert.equal(manifest.sentinels.length, plan.sentinels.length)
    assert.ok(manifest.sentinels.every((s) => s.create && s.procedure === 'fence'))
    assert.equal(manifest.fencing.fence, 'systemctl stop smbd')
  })
})

describe('comet plan (the command)', () => {
  it('a SIGINT stops the walk at the next directory, once the probe files are removed: exit 2, no manifest, no file left behind', async () => {
    const root = tempDir()
    for (let d = 0; d < 60; d++) {
      mkdirSync(join(root, `d${d}`))
      for (let f = 0; f < 200; f++) writeFileSync(join(root, `d${d}`, `file-${f}.docx`), 'x')
    }
    const before = countFiles(root)
    const output = join(tempDir(), 'manifest.yaml')
    // Sent while the walk probes: at the first probe file created in any directory (inotify), not after a fixed
    // time, which a fast machine can outrun.
    const watchers = readdirSync(root).map((name) => watch(join(root, name)))
    const probing = new Promise<void>((resolve) => watchers.forEach((watcher) => watcher.once('change', () => resolve())))
    const child = spawn(process.execPath, [RUN_JS, 'plan', '--root', root, '--output', output], {stdio: ['ignore', 'pipe', 'pipe']})
    let stderr = ''
    child.stderr!.on('data', (chunk) => (stderr += chunk))
    await probing
    for (const watcher of watchers) watcher.close()
    assert.equal(child.exitCode, null, 'the plan ended before the signal could be sent')
    child.kill('SIGINT')
    const code = await new Promise((resolve) => child.once('exit', (exitCode) => resolve(exitCode)))
    assert.equal(code, 2, stderr)
    assert.match(stderr, /interrupted \(SIGINT\) after \d+ director(y|ies); every probe file was removed/)
    assert.equal(countFiles(root), before)
    assert.equal(existsSync(output), false)
  })
})

function countFiles(root: string): number {
  return readdirSync(root, {recursive: true}).length
}
