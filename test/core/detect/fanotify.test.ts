import {strict as assert} from 'node:assert'
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import {describe, test} from 'node:test'

import {describeProcess, fanotifyAvailability, FanotifyGuard, type FanotifyEvent} from '../../../src/core/detect/fanotify.js'
import {tempDir} from '../../support/temp-dir.js'

// The guard always runs in a child Node process and every victim (cat, head, node) in another: a process's
// own opens are allowed natively, and a test process blocked on its own guard would deadlock.

const MODULE = new URL('../../../src/core/detect/fanotify.js', import.meta.url).href
const BOUND_MS = 10_000 // correctness bound: "finished at all", not a timing assertion
const CONTENT = 'sentinel content\n'

const GUARD_SCRIPT = `
import {readFileSync, writeSync} from 'node:fs'
import {createInterface} from 'node:readline'
const {FanotifyGuard} = await import(process.env.FANOTIFY_MODULE)
const config = JSON.parse(process.argv[2])
const say = (message) => writeSync(1, JSON.stringify(message) + '\\n')
const guard = FanotifyGuard.open(
  {defaultDecision: config.defaultDecision, answerTimeoutMs: config.answerTimeoutMs, allowExecutables: config.allowExecutables,
   onError: (error) => say({error: error.message})},
  (event) => {
    say({event})
    switch (config.mode) {
      case 'allow': return 'allow'
      case 'deny': return 'deny'
      case 'later': return new Promise((resolve) => setTimeout(() => resolve('deny'), 20))
      case 'never': return new Promise(() => {})
      case 'silent': return undefined
      case 'hang': for (;;) {} // JavaScript stuck for good
    }
  })
for (const path of config.mark) guard.mark(path)
createInterface({input: process.stdin}).on('line', (line) => {
  const [command, argument] = line.split(' ')
  if (command === 'read') {
    try { say({read: readFileSync(argument, 'utf8')}) } catch (error) { say({read: null, code: error.code}) }
  } else if (command === 'stats') say({stats: guard.stats})
  else if (command === 'close') { guard.close(); say({closed: guard.stats}); process.exit(0) }
})
say({ready: process.pid})
`

type Mode = 'allow' | 'deny' | 'later' | 'never' | 'silent' | 'hang'
interface GuardConfig {
  mode: Mode
  defaultDecision: 'allow' | 'deny'
  answerTimeoutMs: number
  mark: string[]
  allowExecutables?: string[]
}
type Message = {event?: FanotifyEvent; ready?: number; read?: string | null; code?: string; stats?: Record<string, number>; closed?: Record<string, number>; error?: string}

class GuardProcess {
  readonly messages: Message[] = []
  readonly child: ChildProcess
  private stderr = ''
  private exited = false
  private waiters: Array<() => void> = []

  constructor(script: string, config: GuardConfig) {
    this.child = spawn(process.execPath, [script, JSON.stringify(config)], {
      env: {...process.env, FANOTIFY_MODULE: MODULE},
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    createInterface({input: this.child.stdout!}).on('line', (line) => {
      this.messages.push(JSON.parse(line) as Message)
      this.wake()
    })
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()))
    this.child.on('exit', () => {
      this.exited = true
      this.wake()
    })
  }

  static async start(directory: string, config: GuardConfig): Promise<GuardProcess> {
    const script = join(directory, 'guard.mjs')
    writeFileSync(script, GUARD_SCRIPT)
    const guard = new GuardProcess(script, config)
    await guard.waitFor((message) => message.ready !== undefined, 'the guard to be ready')
    return guard
  }

  get events(): FanotifyEvent[] {
    return this.messages.flatMap((message) => (message.event ? [message.event] : []))
  }

  send(line: string): void {
    this.child.stdin!.write(`${line}\n`)
  }

  async waitFor(predicate: (message: Message) => boolean, what: string): Promise<Message> {
    const deadline = Date.now() + BOUND_MS
    for (;;) {
      const found = this.messages.find(predicate)
      if (found) return found
      if (this.exited) throw new Error(`the guard exited while waiting for ${what}: ${this.stderr}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no ${what} within ${BOUND_MS} ms; guard said ${JSON.stringify(this.messages)} ${this.stderr}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  async stats(): Promise<Record<string, number>> {
    const before = this.messages.length
    this.send('stats')
    const message = await this.waitFor((m) => m.stats !== undefined && this.messages.indexOf(m) >= before, 'stats')
    return message.stats!
  }

  /** SIGKILL, and wait until it is gone. */
  async kill(): Promise<void> {
    if (this.exited) return
    const gone = new Promise((resolve) => this.child.once('exit', resolve))
    this.child.kill('SIGKILL')
    await gone
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter()
  }
}

interface Finished {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Starts a victim; `finished` rejects if it has not finished within the bound (then it is killed). */
function victim(command: string, args: string[]): {pid: number; child: ChildProcess; finished: Promise<Finished>} {
  const child = spawn(command, args, {stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const finished = new Promise<Finished>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${command} ${args.join(' ')} did not finish within ${BOUND_MS} ms: it was left hanging`))
    }, BOUND_MS)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({code, signal, stdout, stderr})
    })
  })
  assert.ok(child.pid, `${command} did not start`)
  return {pid: child.pid, child, finished}
}

function setup(): {directory: string; sentinel: string; other: string} {
  const directory = tempDir('comet-fanotify-')
  const sentinel = join(directory, 'aaa-invoices.xlsx')
  const other = join(directory, 'orders.db')
  writeFileSync(sentinel, CONTENT)
  writeFileSync(other, 'not a sentinel\n')
  return {directory, sentinel, other}
}

/** Runs `body` with a guard process, killed afterwards whatever happens. */
async function withGuard(config: Omit<GuardConfig, 'mark'> & {mark?: string[]}, body: (guard: GuardProcess, files: ReturnType<typeof setup>) => Promise<void>): Promise<void> {
  const files = setup()
  const guard = await GuardProcess.start(files.directory, {mark: [files.sentinel], ...config})
  try {
    await body(guard, files)
  } finally {
    await guard.kill()
  }
}

function assertDenied(result: Finished, what: string): void {
  assert.notEqual(result.code, 0, `${what} should have been refused: ${JSON.stringify(result)}`)
  assert.match(result.stderr, /Operation not permitted|EPERM/, `${what}: ${result.stderr}`)
}

describe('fanotify guard', {timeout: 60_000}, () => {
  test('fanotifyAvailability() reports fanotify permission events available here (root)', () => {
    assert.deepEqual(fanotifyAvailability(), {available: true})
    const {sentinel} = setup()
    assert.deepEqual(fanotifyAvailability(sentinel), {available: true})
    const missing = fanotifyAvailability('/nonexistent/comet-sentinel')
    assert.equal(missing.available, false)
    assert.match(!missing.available ? missing.reason : '', /\/nonexistent\/comet-sentinel/)
    const proc = fanotifyAvailability('/proc/self/status')
    assert.equal(proc.available, false)
    assert.match(!proc.available ? proc.reason : '', /does not support fanotify permission events/)
  })

  test('without the addon, fanotifyAvailability() says it is not built instead of throwing', () => {
    const script = `const m = await import(${JSON.stringify(MODULE)}); let opened; try { m.FanotifyGuard.open({defaultDecision: 'deny', answerTimeoutMs: 200}, () => {}); opened = 'yes' } catch (error) { opened = error.message } console.log(JSON.stringify({availability: m.fanotifyAvailability(), opened}))`
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {env: {...process.env, COMET_FANOTIFY_ADDON: '/nonexistent/fanotify.node'}, encoding: 'utf8', timeout: BOUND_MS})
    assert.equal(result.status, 0, result.stderr)
    const {availability, opened} = JSON.parse(result.stdout) as {availability: {available: boolean; reason: string}; opened: string}
    assert.equal(availability.available, false)
    assert.match(availability.reason, /^the fanotify addon is not built \(\/nonexistent\/fanotify\.node/)
    assert.match(opened, /cannot use fanotify: the fanotify addon is not built/)
  })

  test('mark() refuses a missing path, a symlink and a directory, naming the path; options are checked', () => {
    const {directory, sentinel} = setup()
    const link = join(directory, 'link')
    symlinkSync(sentinel, link)
    const sub = join(directory, 'sub')
    mkdirSync(sub)
    assert.throws(() => FanotifyGuard.open({defaultDecision: 'deny', answerTimeoutMs: 0}, () => {}), RangeError)
    assert.throws(() => FanotifyGuard.open({defaultDecision: 'maybe' as 'deny', answerTimeoutMs: 200}, () => {}), TypeError)
    // This process marks nothing that anyone reads: no event can reach it.
    const guard = FanotifyGuard.open({defaultDecision: 'deny', answerTimeoutMs: 200}, () => 'deny')
    try {
      assert.throws(() => guard.mark(join(directory, 'missing')), (error: Error) => error.message.includes(join(directory, 'missing')) && /ENOENT|no such file/i.test(error.message))
      assert.throws(() => guard.mark(link), (error: Error) => error.message.includes(link) && error.message.includes('symbolic link'))
      assert.throws(() => guard.mark(sub), (error: Error) => error.message.includes(sub) && error.message.includes('not a regular file'))
      assert.throws(() => FanotifyGuard.open({defaultDecision: 'deny', answerTimeoutMs: 200, allowExecutables: ['head']}, () => {}), /absolute path/)
      guard.unmark(join(directory, 'missing')) // tolerated
    } finally {
      guard.close()
    }
    assert.equal(guard.closed, true)
    guard.close() // idempotent
    assert.throws(() => guard.mark(sentinel), /closed/)
  })

  test('a cat of a marked file is refused (EPERM) and the guard saw its pid and path', async () => {
    await withGuard({mode: 'deny', defaultDecision: 'allow', answerTimeoutMs: 5000}, async (guard, {sentinel}) => {
      const cat = victim('cat', [sentinel])
      const result = await cat.finished
      assertDenied(result, 'cat')
      assert.doesNotMatch(result.stdout, /sentinel content/)
      const seen = guard.events.find((event) => event.pid === cat.pid)
      assert.ok(seen, `no event for cat (pid ${cat.pid}): ${JSON.stringify(guard.events)}`)
      assert.equal(seen.path, sentinel)
      assert.equal(seen.permission, true)
      assert.deepEqual(seen.kinds, ['open-perm'])
      assert.equal(seen.exe, realpathSync('/usr/bin/cat'))
      const stats = await guard.stats()
      assert.ok(stats.answeredByHandler >= 1, JSON.stringify(stats))
    })
  })

  test('a write is refused too, and leaves the sentinel unchanged', async () => {
    await withGuard({mode: 'deny', defaultDecision: 'deny', answerTimeoutMs: 5000}, async (guard, {sentinel}) => {
      const writer = victim(process.execPath, ['-e', `require('node:fs').appendFileSync(${JSON.stringify(sentinel)}, 'encrypted')`])
      const result = await writer.finished
      assert.notEqual(result.code, 0)
      assert.match(result.stderr, /EPERM/)
      assert.ok(guard.events.some((event) => event.pid === writer.pid && event.kinds.includes('open-perm')))
      await guard.kill()
      assert.equal(readFileSync(sentinel, 'utf8'), CONTENT)
    })
  })

  test('unmarked files in the same directory are not affected', async () => {
    await withGuard({mode: 'deny', defaultDecision: 'deny', answerTimeoutMs: 5000}, async (guard, {sentinel, other}) => {
      const free = await victim('cat', [other]).finished
      assert.equal(free.code, 0, free.stderr)
      assert.equal(free.stdout, 'not a sentinel\n')
      const cat = victim('cat', [sentinel])
      assertDenied(await cat.finished, 'cat of the sentinel')
      await guard.waitFor((message) => message.event?.pid === cat.pid, 'the event of the sentinel read')
      assert.deepEqual(
        guard.events.filter((event) => event.path !== sentinel),
        [],
      )
    })
  })

  test('an allow-listed executable reads the sentinel while cat is refused', async () => {
    await withGuard({mode: 'deny', defaultDecision: 'deny', answerTimeoutMs: 5000, allowExecutables: ['/usr/bin/head']}, async (guard, {sentinel}) => {
      const allowed = victim('head', ['-c1', sentinel])
      const result = await allowed.finished
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, 's')
      const cat = victim('cat', [sentinel])
      assertDenied(await cat.finished, 'cat')
      await guard.waitFor((message) => message.event?.pid === cat.pid, 'the event of cat')
      assert.equal(guard.events.filter((event) => event.pid === allowed.pid).length, 0, 'allow-listed reads are answered natively, not reported')
      const stats = await guard.stats()
      assert.ok(stats.allowedExecutables >= 1, JSON.stringify(stats))
    })
  })

  test("the guard's own process reads its sentinels without asking the handler", async () => {
    await withGuard({mode: 'deny', defaultDecision: 'deny', answerTimeoutMs: 5000}, async (guard, {sentinel}) => {
      guard.send(`read ${sentinel}`)
      const read = await guard.waitFor((message) => message.read !== undefined, 'the own read')
      assert.equal(read.read, CONTENT, `own read refused: ${read.code}`)
      assert.deepEqual(guard.events, [])
      const stats = await guard.stats()
      assert.ok(stats.allowedSelf >= 1, JSON.stringify(stats))
      assert.equal(stats.answeredByHandler, 0)
    })
  })

  test('a handler answering through a promise is obeyed', async () => {
    await withGuard({mode: 'later', defaultDecision: 'allow', answerTimeoutMs: 5000}, async (guard, {sentinel}) => {
      const reader = victim(process.execPath, ['-e', `require('node:fs').readFileSync(${JSON.stringify(sentinel)})`])
      const result = await reader.finished
      assert.notEqual(result.code, 0)
      assert.match(result.stderr, /EPERM/)
      const stats = await guard.stats()
      assert.ok(stats.answeredByHandler >= 1, JSON.stringify(stats))
      assert.equal(stats.answeredByDefaultOnTimeout, 0)
    })
  })

  test('a handler that returns nothing gets the default decision', async () => {
    await withGuard({mode: 'silent', defaultDecision: 'deny', answerTimeoutMs: 5000}, async (guard, {sentinel}) => {
      const cat = victim('cat', [sentinel])
      assertDenied(await cat.finished, 'cat')
      assert.ok(guard.events.some((event) => event.pid === cat.pid))
    })
  })

  for (const defaultDecision of ['allow', 'deny'] as const) {
    test(`JavaScript stuck in a busy loop: the reader is answered by the default (${defaultDecision}) within the bound`, async () => {
      await withGuard({mode: 'hang', defaultDecision, answerTimeoutMs: 200}, async (guard, {sentinel}) => {
        const cat = victim('cat', [sentinel])
        const result = await cat.finished
        await guard.waitFor((message) => message.event?.pid === cat.pid, 'the event before the guard hung')
        if (defaultDecision === 'allow') {
          assert.equal(result.code, 0, result.stderr)
          assert.equal(result.stdout, CONTENT)
        } else assertDenied(result, 'cat')
        // Another victim, while the handler is still stuck.
        const head = victim('head', ['-c1', sentinel])
        const second = await head.finished
        if (defaultDecision === 'allow') assert.equal(second.stdout, 's')
        else assertDenied(second, 'head')
      })
    })
  }

  test('close() answers the events still held with the default decision', async () => {
    await withGuard({mode: 'never', defaultDecision: 'deny', answerTimeoutMs: 60_000}, async (guard, {sentinel}) => {
      const cat = victim('cat', [sentinel])
      await guard.waitFor((message) => message.event?.pid === cat.pid, 'the held event')
      assert.equal(cat.child.exitCode, null, 'cat is held until the guard answers')
      guard.send('close')
      const closed = await guard.waitFor((message) => message.closed !== undefined, 'close')
      assertDenied(await cat.finished, 'cat')
      assert.equal(closed.closed!.answeredOnClose, 1)
    })
  })

  test('the guard killed with SIGKILL while holding an event: the kernel lets the reader through', async () => {
    await withGuard({mode: 'hang', defaultDecision: 'deny', answerTimeoutMs: 60_000}, async (guard, {sentinel}) => {
      const cat = victim('cat', [sentinel])
      await guard.waitFor((message) => message.event?.pid === cat.pid, 'the held event')
      assert.equal(cat.child.exitCode, null, 'cat is held until the guard answers')
      await guard.kill()
      const result = await cat.finished
      // Observed (and what fanotify_release does): the group's pending events are allowed.
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, CONTENT)
    })
  })

  test("a write to a marked file is reported as modify and close-write with the writer's pid", async () => {
    await withGuard({mode: 'allow', defaultDecision: 'deny', answerTimeoutMs: 5000}, async (guard, {sentinel}) => {
      const writer = victim(process.execPath, ['-e', `require('node:fs').appendFileSync(${JSON.stringify(sentinel)}, 'encrypted')`])
      const result = await writer.finished
      assert.equal(result.code, 0, result.stderr)
      await guard.waitFor((message) => message.event?.pid === writer.pid && message.event.kinds.includes('close-write'), 'close-write')
      const events = guard.events.filter((event) => event.pid === writer.pid)
      const kinds = new Set(events.flatMap((event) => event.kinds))
      for (const kind of ['open-perm', 'modify', 'close-write']) assert.ok(kinds.has(kind as never), `${kind} missing: ${JSON.stringify(events)}`)
      for (const event of events) assert.equal(event.path, sentinel)
      const notification = events.find((event) => event.kinds.includes('modify'))!
      assert.equal(notification.permission, false)
      assert.equal(readFileSync(sentinel, 'utf8'), `${CONTENT}encrypted`)
    })
  })

  test('describeProcess() reads /proc and tolerates a vanished process', async () => {
    const self = describeProcess(process.pid)
    assert.ok(self)
    assert.equal(self.pid, process.pid)
    assert.equal(self.ppid, process.ppid)
    assert.equal(self.uid, process.getuid!())
    assert.equal(self.exe, realpathSync(process.execPath))
    assert.equal(self.cmdline[0], process.argv0)
    const gone = victim('true', [])
    await gone.finished
    assert.equal(describeProcess(gone.pid), null)
    assert.equal(describeProcess(-1), null)
  })
})
