import assert from 'node:assert/strict'
import {spawn, type ChildProcess} from 'node:child_process'
import {appendFileSync, existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {startWatch} from '../support/cli.js'
import {makeFixture, waitFor} from '../support/fixture.js'

/**
 * systemd's side of the notify protocol, as systemd receives it: a Unix datagram socket (Python's, since Node
 * has none) that prints every message it gets, one JSON string a line.
 */
function notifySocket(path: string): {process: ChildProcess; messages: () => string[]} {
  const script = `import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps("listening"), flush=True)
while True:
    print(json.dumps(s.recv(4096).decode()), flush=True)`
  const child = spawn('python3', ['-c', script, path], {stdio: ['ignore', 'pipe', 'inherit']})
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  return {process: child, messages: () => output.split('\n').filter(Boolean).map((line) => JSON.parse(line) as string).filter((line) => line !== 'listening')}
}

describe('comet watch under systemd (Type=notify, WatchdogSec=)', () => {
  it('says READY=1 once it watches, pings WATCHDOG=1 while its loop turns, STOPPING=1 on SIGTERM, and keeps NOTIFY_SOCKET from procedures', async () => {
    const f = makeFixture()
    // The fixture's sentinels, with a procedure that records whether it sees systemd's socket.
    const seen = join(f.node.root, 'procedure-saw.log')
    const manifest = f.node.writeManifest(readFileSync(f.manifest, 'utf8').replace(/^  record: .*$/m, `  record: echo "\${NOTIFY_SOCKET:-none} \${WATCHDOG_USEC:-none}" >> ${seen}`), 'notify.yaml')
    assert.equal(f.node.run(['init', '--manifest', manifest]).status, 0)
    const socketPath = join(f.node.root, 'notify.sock')
    const systemd = notifySocket(socketPath)
    try {
      await waitFor('the socket', () => existsSync(socketPath))
      // A watchdog of 400 ms: a ping every 200 ms.
      const agent = await startWatch(f.node, ['--no-fanotify'], {NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: '400000'})
      let code: number | null
      try {
        await waitFor('READY=1', () => systemd.messages().some((message) => message.startsWith('READY=1\n')))
        assert.match(systemd.messages().find((message) => message.startsWith('READY=1')) as string, /STATUS=watching 3 sentinel\(s\) in 1 director/)
        await waitFor('three watchdog pings', () => systemd.messages().filter((message) => message === 'WATCHDOG=1').length >= 3, 5000)
        // A procedure is not the service: it does not see the socket.
        appendFileSync(f.planted[0], 'encrypted')
        await waitFor('the procedure', () => existsSync(seen))
        assert.equal(readFileSync(seen, 'utf8'), 'none none\n')
      } finally {
        code = await agent.stop()
      }
      assert.equal(code, 0, agent.log())
      // The listener prints what it received a moment after the agent has gone.
      await waitFor('STOPPING=1, last', () => systemd.messages().at(-1) === 'STOPPING=1', 5000)
    } finally {
      systemd.process.kill('SIGKILL')
    }
  })

  it('without the addon, systemd-notify speaks for the agent, with the agent\'s pid', async () => {
    const f = makeFixture()
    assert.equal(f.node.run(['init', '--manifest', f.manifest]).status, 0)
    const socketPath = join(f.node.root, 'notify.sock')
    const systemd = notifySocket(socketPath)
    try {
      await waitFor('the socket', () => existsSync(socketPath))
      const agent = await startWatch(f.node, ['--no-fanotify'], {NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: '2000000', COMET_SYSTEMD_ADDON: join(f.node.root, 'missing.node')})
      try {
        await waitFor('READY=1', () => systemd.messages().some((message) => message.includes('READY=1')))
        const ready = systemd.messages().find((message) => message.includes('READY=1')) as string
        assert.match(ready, new RegExp(`MAINPID=${agent.process.pid}`))
        assert.match(agent.log(), /notifying systemd through systemd-notify/)
        await waitFor('a watchdog ping', () => systemd.messages().some((message) => message.includes('WATCHDOG=1')), 5000)
      } finally {
        assert.equal(await agent.stop(), 0, agent.log())
      }
    } finally {
      systemd.process.kill('SIGKILL')
    }
  })

  it('outside systemd it sends nothing and says nothing about it', async () => {
    const f = makeFixture()
    assert.equal(f.node.run(['init', '--manifest', f.manifest]).status, 0)
    const agent = await startWatch(f.node, ['--no-fanotify'])
    assert.equal(await agent.stop(), 0)
    assert.doesNotMatch(agent.log(), /systemd|NOTIFY_SOCKET/)
  })
})
