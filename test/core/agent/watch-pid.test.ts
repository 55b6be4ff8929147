import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {runningWatchPid} from '../../../src/core/agent/watch-pid.js'
import {tempDir} from '../../support/temp-dir.js'

describe('runningWatchPid', () => {
  const directory = tempDir()
  const pidFile = join(directory, 'watch.pid')

  it('names a live process whose command line says watch', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', 'watch'], {stdio: 'ignore'})
    try {
      await new Promise((resolve) => child.once('spawn', resolve))
      writeFileSync(pidFile, `${child.pid}\n`)
      assert.equal(runningWatchPid(pidFile), child.pid)
    } finally {
      child.kill('SIGKILL')
    }
  })

  it('vouches for no process that reused the pid: a live process that is not comet watch', () => {
    writeFileSync(pidFile, `${process.pid}\n`)
    assert.equal(runningWatchPid(pidFile), undefined)
  })

  it('reads a missing file, garbage, or a pid no process has as no agent', () => {
    assert.equal(runningWatchPid(join(directory, 'absent.pid')), undefined)
    writeFileSync(pidFile, 'not a pid\n')
    assert.equal(runningWatchPid(pidFile), undefined)
    writeFileSync(pidFile, '0\n')
    assert.equal(runningWatchPid(pidFile), undefined)
    writeFileSync(pidFile, '4194304\n')
    assert.equal(runningWatchPid(pidFile), undefined)
  })
})
