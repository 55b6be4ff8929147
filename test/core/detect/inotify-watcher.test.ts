import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {fileURLToPath} from 'node:url'

import type {DirectoryEvents} from '../../../src/core/detect/directory-watcher.js'
import {openDirectoryWatcher} from '../../../src/core/detect/directory-watcher.js'
import {InotifyWatcher} from '../../../src/core/detect/inotify-watcher.js'
import {tempDir} from '../../support/temp-dir.js'
import {waitFor} from '../../support/fixture.js'
import {overflowQueue} from '../../support/inotify-overflow.js'

/** Everything a watcher reported, in order. */
function recorder() {
  const seen: string[] = []
  const events: DirectoryEvents = {
    onEntry: (directory, name) => seen.push(`entry ${directory} ${name}`),
    onLost: (directory) => seen.push(`lost ${directory}`),
    onOverflow: () => seen.push('overflow'),
  }
  return {seen, events}
}

function open(events: DirectoryEvents): InotifyWatcher {
  const watcher = InotifyWatcher.open(events)
  assert.ok(watcher instanceof InotifyWatcher, `the inotify addon must be built: ${String(watcher)}`)
  return watcher
}

describe('InotifyWatcher (native/inotify)', () => {
  it('reports a write, a delete and a rename in a watched directory, by name', async () => {
    const root = tempDir()
    const {seen, events} = recorder()
    const watcher = open(events)
    try {
      assert.deepEqual(watcher.watch([root]), [])
      writeFileSync(join(root, 'a.docx'), 'x')
      renameSync(join(root, 'a.docx'), join(root, 'b.docx'))
      rmSync(join(root, 'b.docx'))
      await waitFor('three names', () => seen.includes(`entry ${root} a.docx`) && seen.includes(`entry ${root} b.docx`) && seen.filter((e) => e === `entry ${root} b.docx`).length >= 2)
      assert.ok(!seen.includes('overflow'))
    } finally {
      watcher.close()
    }
  })

  it('reports the loss of a directory removed or renamed, and forgets its watch', async () => {
    const root = tempDir()
    const removed = join(root, 'removed')
    const renamed = join(root, 'renamed')
    mkdirSync(removed)
    mkdirSync(renamed)
    const {seen, events} = recorder()
    const watcher = open(events)
    try {
      watcher.watch([removed, renamed])
      rmSync(removed, {recursive: true})
      renameSync(renamed, `${renamed}.locked`)
      await waitFor('both losses', () => seen.includes(`lost ${removed}`) && seen.includes(`lost ${renamed}`))
      assert.deepEqual(watcher.watched, [])
      // The path can be watched again once a directory is back there.
      mkdirSync(removed)
      assert.deepEqual(watcher.watch([removed]), [])
      writeFileSync(join(removed, 'again'), 'x')
      await waitFor('an event from the new watch', () => seen.includes(`entry ${removed} again`))
    } finally {
      watcher.close()
    }
  })

  it('reports a queue overflow, which fs.watch never does', async () => {
    const root = tempDir()
    const {seen, events} = recorder()
    const watcher = open(events)
    try {
      watcher.watch([root])
      // The event loop is held by this loop, so the kernel queue (fs.inotify.max_queued_events, 16384 by
      // default) fills with attribute changes, alternating between two files so that none merges with the last.
      overflowQueue(root)
      await waitFor('the overflow', () => seen.includes('overflow'))
    } finally {
      watcher.close()
    }
  })

  it('refuses a file and a missing path, naming them; watches a directory reached through a symlink, as fs.watch does', async () => {
    const root = tempDir()
    const real = join(root, 'real')
    mkdirSync(real)
    symlinkSync(real, join(root, 'link'))
    writeFileSync(join(root, 'file'), 'x')
    const {seen, events} = recorder()
    const watcher = open(events)
    try {
      const failed = watcher.watch([join(root, 'link'), join(root, 'file'), join(root, 'absent')])
      assert.deepEqual(failed.map((f) => f.directory), [join(root, 'file'), join(root, 'absent')])
      assert.match(failed[0].error, /file.*ENOTDIR/)
      assert.match(failed[1].error, /absent.*ENOENT/)
      assert.deepEqual(watcher.watched, [join(root, 'link')])
      writeFileSync(join(real, 'through-the-link'), 'x')
      await waitFor('the event under the link', () => seen.includes(`entry ${join(root, 'link')} through-the-link`))
    } finally {
      watcher.close()
    }
  })

  it('calls nothing after close, and a process with a watcher left open still exits', async () => {
    const root = tempDir()
    const {seen, events} = recorder()
    const watcher = open(events)
    watcher.watch([root])
    watcher.close()
    writeFileSync(join(root, 'late'), 'x')
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.deepEqual(seen, [])
    // Environment teardown closes a watcher nobody closed (process.exit with the handle open).
    const module = fileURLToPath(new URL('../../../src/core/detect/inotify-watcher.js', import.meta.url))
    const script = `import {InotifyWatcher} from ${JSON.stringify(module)}
const w = InotifyWatcher.open({onEntry() {}, onLost() {}, onOverflow() {}})
if (typeof w === 'string') { console.error(w); process.exit(3) }
w.watch([${JSON.stringify(root)}])
setTimeout(() => process.exit(0), 50)`
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {encoding: 'utf8', timeout: 10_000})
    assert.equal(result.status, 0, result.stderr)
  })

  it('without the addon, falls back to fs.watch and says that an overflow is caught only by the periodic re-verify', () => {
    const module = fileURLToPath(new URL('../../../src/core/detect/directory-watcher.js', import.meta.url))
    const script = `import {openDirectoryWatcher} from ${JSON.stringify(module)}
const w = openDirectoryWatcher({onEntry() {}, onLost() {}, onOverflow() {}})
console.log(w.description); w.close()`
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {env: {...process.env, COMET_INOTIFY_ADDON: '/nonexistent/inotify.node'}, encoding: 'utf8', timeout: 10_000})
    assert.equal(result.status, 0, result.stderr)
    assert.match(result.stdout, /^inotify through fs\.watch \(the inotify addon is not built .*periodic re-verify\)/)
    const native = openDirectoryWatcher(recorder().events)
    assert.equal(native.description, 'inotify')
    native.close()
  })
})
