import assert from 'node:assert/strict'
import {mkdirSync, symlinkSync, writeFileSync} from 'node:fs'
import {basename, dirname, join} from 'node:path'
import {describe, it} from 'node:test'

import {parseManifest} from '../../../src/core/manifest/parse-manifest.js'
import {planSentinels} from '../../../src/core/plan/plan-sentinels.js'
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

describe('comet plan', () => {
  it('proposes sentinels in every directory with files, 8 % of its files and at least one', () => {
    const root = tree()
    const plan = planSentinels({root, fencingCommand: 'true'})
    const perDirectory = (directory: string) => plan.sentinels.filter((s) => s.directory === directory).length
    assert.equal(perDirectory(join(root, 'finance')), 4)
    assert.equal(perDirectory(join(root, 'finance', 'archive')), 1)
    assert.equal(perDirectory(root), 1)
    assert.equal(perDirectory(join(root, 'empty')), 0)
    assert.equal(plan.files, 46)
    assert.equal(plan.directories, 4)
  })

  it('names sentinels after the directory\'s favourite target extensions, never colliding with a file', () => {
    const root = tree()
    const plan = planSentinels({root, perDirectory: 3, fencingCommand: 'true'})
    const finance = plan.sentinels.filter((s) => s.directory === join(root, 'finance'))
    assert.equal(finance.length, 3)
    for (const sentinel of finance) assert.match(sentinel.path, /\.xlsx$/)
    for (const sentinel of plan.sentinels.filter((s) => s.directory === join(root, 'finance', 'archive'))) assert.match(sentinel.path, /\.sql$/)
    assert.equal(new Set(plan.sentinels.map((s) => s.path)).size, plan.sentinels.length)
    for (const sentinel of plan.sentinels) assert.ok(!/^sheet-|^dump-/.test(basename(sentinel.path)))
  })

  it('hides names when asked, and never walks through a symlink', () => {
    const root = tree()
    const outside = tempDir()
    writeFileSync(join(outside, 'secret.docx'), 'x')
    symlinkSync(outside, join(root, 'link'))
    const plan = planSentinels({root, hidden: true, fencingCommand: 'true'})
    for (const sentinel of plan.sentinels) {
      assert.ok(basename(sentinel.path).startsWith('.'))
      assert.ok(sentinel.path.startsWith(root + '/'))
      assert.ok(!dirname(sentinel.path).includes('link'))
    }
  })

  it('prints a manifest that comet init accepts as it is', () => {
    const root = tree()
    const plan = planSentinels({root, node: 'files01', fencingCommand: 'systemctl stop smbd'})
    const manifest = parseManifest('plan.yaml', plan.manifest)
    assert.equal(manifest.node, 'files01')
    assert.equal(manifest.sentinels.length, plan.sentinels.length)
    assert.ok(manifest.sentinels.every((s) => s.create && s.procedure === 'fence'))
    assert.equal(manifest.fencing.fence, 'systemctl stop smbd')
  })
})
