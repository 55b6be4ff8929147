import assert from 'node:assert/strict'
import {execFileSync, spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {existsSync, readFileSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {TestNode} from '../support/cli.js'
import {tempDir} from '../support/temp-dir.js'
import {waitFor} from '../support/fixture.js'

/**
 * Atomic Red Team's Linux tests for T1486 (Data Encrypted for Impact), run against a sentinel while comet watch
 * holds fanotify marks on it. Three of the four never modify the file they take, so only a read tripwire sees them.
 */
const ENCRYPTORS: Array<{name: string; exe: string; command: (sentinel: string, out: string) => string[]; decrypts: (out: string) => Buffer | undefined}> = [
  {
    name: 'gpg -c',
    exe: '/usr/bin/gpg',
    command: (sentinel, out) => ['gpg', '--batch', '--yes', '--pinentry-mode', 'loopback', '--passphrase', 'art', '--homedir', `${out}.gnupg`, '-c', '-o', out, sentinel],
    decrypts: (out) => tryRun(['gpg', '--batch', '--pinentry-mode', 'loopback', '--passphrase', 'art', '--homedir', `${out}.gnupg`, '-d', out]),
  },
  {
    name: '7z a -p',
    exe: '/usr/lib/p7zip/7z',
    command: (sentinel, out) => ['7z', 'a', '-part', `${out}.7z`, sentinel],
    decrypts: (out) => tryRun(['7z', 'x', '-so', '-part', `${out}.7z`]),
  },
  {
    name: 'openssl rsautl -encrypt',
    exe: '/usr/bin/openssl',
    command: (sentinel, out) => ['openssl', 'rsautl', '-encrypt', '-inkey', `${out}.pub`, '-pubin', '-in', sentinel, '-out', out],
    decrypts: (out) => tryRun(['openssl', 'rsautl', '-decrypt', '-inkey', `${out}.key`, '-in', out]),
  },
  {
    name: 'ccrypt',
    exe: '/usr/bin/ccrypt',
    command: (sentinel) => ['ccrypt', '-e', '-f', '-K', 'art', sentinel],
    decrypts: () => undefined,
  },
]

function tryRun(command: string[]): Buffer | undefined {
  const result = spawnSync(command[0], command.slice(1), {stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000})
  return result.status === 0 ? result.stdout : undefined
}

/** The test process must not open a guarded sentinel itself (it would be frozen): sha256sum is allow-listed. */
function checksum(path: string): string {
  return execFileSync('sha256sum', [path], {encoding: 'utf8', timeout: 10_000}).split(' ')[0]
}

function processState(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[0]
  } catch {
    return undefined
  }
}

function status(node: TestNode) {
  return JSON.parse(readFileSync(join(node.store, 'comet-status', `${node.node}.json`), 'utf8')).data
}

describe('fanotify: trip on first touch (comet watch as root)', () => {
  let watch: ChildProcess
  // Registered first, so that it runs first: the agent stops before its fixture folder is removed.
  after(async () => {
    watch?.kill('SIGTERM')
    if (watch && watch.exitCode === null) await new Promise((resolve) => watch.once('exit', resolve))
  })
  // Made here, not in before(): tempDir() registers its clean-up with after(), which belongs to the suite.
  const node = new TestNode(tempDir())
  let log = ''
  const sentinels: Record<string, string> = {}
  const contents: Record<string, Buffer> = {}
  const checksums: Record<string, string> = {}

  before(async () => {
    const paths = [...ENCRYPTORS.map((_, index) => join(node.data, `ledger-${index}.xlsx`)), join(node.data, 'backup-read.db'), join(node.data, 'policy-deny.pdf')]
    ENCRYPTORS.forEach((encryptor, index) => (sentinels[encryptor.name] = paths[index]))
    const manifest = node.writeManifest(`sentinels:
${paths.map((path) => `  - path: ${path}\n    create: true${path.endsWith('policy-deny.pdf') ? '\n    on_read: deny' : ''}`).join('\n')}
fencing:
  record: echo "$COMET_REASON $COMET_SUSPECT_PIDS" >> ${join(node.root, 'fenced.log')}
default_fencing: record
allow_readers:
  - /usr/bin/sha256sum
`)
    const init = node.run(['init', '--manifest', manifest])
    assert.equal(init.status, 0, init.stderr)
    for (const path of paths) {
      contents[path] = readFileSync(path)
      checksums[path] = checksum(path)
    }
    execFileSync('openssl', ['genrsa', '-out', join(node.root, 'rsa.key'), '2048'], {stdio: 'ignore'})
    watch = node.spawn(['watch', '--interval', '3600'])
    watch.stderr!.on('data', (chunk) => (log += chunk))
    await waitFor('the agent to watch', () => log.includes('watching'))
    assert.match(log, /detectors: fanotify \(reads blocked\) and inotify/)
  })


  for (const encryptor of ENCRYPTORS)
    it(`${encryptor.name}: the encryptor is denied and frozen, its output holds none of the sentinel, the incident names its pid and exe`, async () => {
      const sentinel = sentinels[encryptor.name]
      const out = join(node.root, `stolen-${encryptor.name.replace(/\W+/g, '-')}`)
      if (encryptor.name.startsWith('openssl')) {
        execFileSync('cp', [join(node.root, 'rsa.key'), `${out}.key`])
        execFileSync('openssl', ['rsa', '-in', `${out}.key`, '-pubout', '-out', `${out}.pub`], {stdio: 'ignore'})
      }
      const [command, ...args] = encryptor.command(sentinel, out)
      const attacker = spawn(command, args, {stdio: 'ignore'})
      const exited = new Promise((resolve) => attacker.once('exit', resolve))
      try {
        await waitFor(`${encryptor.name} to be frozen`, () => processState(attacker.pid as number) === 'T')
        await waitFor('the incident to be reported', () => {
          try {
            return status(node).incidents.some((incident: {suspects?: Array<{pid: number}>}) => incident.suspects?.some((suspect) => suspect.pid === attacker.pid))
          } catch {
            return false
          }
        })
      } finally {
        attacker.kill('SIGKILL')
      }
      await exited
      assert.equal(checksum(sentinel), checksums[sentinel], 'the sentinel is untouched')
      assert.equal(encryptor.decrypts(out)?.includes(contents[sentinel].subarray(0, 64)) ?? false, false, 'nothing of the sentinel can be recovered from the output')
      if (existsSync(`${sentinel}.cpt`)) assert.equal(statSync(`${sentinel}.cpt`).size, 0)
      const incident = status(node).incidents.find((entry: {suspects?: Array<{pid: number}>}) => entry.suspects?.some((suspect) => suspect.pid === attacker.pid))
      assert.equal(incident.sentinels[0].path, sentinel)
      assert.equal(incident.sentinels[0].reason, 'read')
      assert.equal(incident.suspects[0].exe, encryptor.exe)
      assert.equal(incident.suspects[0].action, 'frozen')
      assert.equal(incident.suspects[0].uid, 0)
      assert.ok(incident.suspects[0].cmdline.length > 0)
    })

  it('the procedure ran with COMET_SUSPECT_PIDS naming the first encryptor, once until reset', async () => {
    await waitFor('the procedure', () => existsSync(join(node.root, 'fenced.log')))
    const lines = readFileSync(join(node.root, 'fenced.log'), 'utf8').trim().split('\n')
    assert.equal(lines.length, 1)
    assert.match(lines[0], /^read \d+$/)
  })

  it('an allow-listed executable (a backup agent) reads a sentinel; nothing trips', () => {
    const before = status(node).incidentsTotal
    const result = spawnSync('sha256sum', [sentinels['gpg -c']], {encoding: 'utf8', timeout: 10_000})
    assert.equal(result.status, 0, result.stderr)
    assert.equal(status(node).incidentsTotal, before)
  })

  it('on_read: deny refuses the open without freezing the reader', () => {
    const result = spawnSync('cat', [join(node.data, 'policy-deny.pdf')], {encoding: 'utf8', timeout: 10_000})
    assert.notEqual(result.status, 0)
    assert.match(result.stderr, /Operation not permitted/)
  })

  it('another comet command (verify) still reads the sentinels while the agent guards them', () => {
    const verify = node.run(['verify', '--no-fence', '--json'])
    assert.equal(verify.json.counts.intact, 6, verify.stderr)
  })
})

describe('fanotify: a writer it let open', () => {
  it('a write to an on_read: allow sentinel fences, and the incident names the writer\'s pid and executable', async () => {
    const node = new TestNode(tempDir())
    const sentinel = join(node.data, 'shared-ledger.ods')
    const manifest = node.writeManifest(`sentinels:\n  - path: ${sentinel}\n    create: true\n    on_read: allow\nfencing:\n  record: echo "$COMET_REASON" >> ${join(node.root, 'fenced.log')}\ndefault_fencing: record\n`)
    assert.equal(node.run(['init', '--manifest', manifest]).status, 0)
    const watch = node.spawn(['watch', '--interval', '3600'])
    let log = ''
    watch.stderr!.on('data', (chunk) => (log += chunk))
    let writer: ChildProcess | undefined
    try {
      await waitFor('the agent to watch', () => log.includes('watching'))
      assert.match(log, /detectors: fanotify/)
      // The shell appends, then waits, so that the agent can still read who it is.
      writer = spawn('sh', ['-c', `echo encrypted >> '${sentinel}'; sleep 5`], {stdio: 'ignore'})
      const pid = writer.pid as number
      await waitFor('the procedure', () => existsSync(join(node.root, 'fenced.log')))
      assert.equal(readFileSync(join(node.root, 'fenced.log'), 'utf8'), 'modified\n')
      const incidentWithWriter = () => status(node).incidents.find((incident: {suspects?: Array<{pid: number}>}) => incident.suspects?.some((suspect) => suspect.pid === pid))
      await waitFor('the incident to name the writer', () => incidentWithWriter() !== undefined)
      const suspect = incidentWithWriter().suspects.find((entry: {pid: number}) => entry.pid === pid)
      assert.equal(suspect.action, 'allowed')
      assert.match(suspect.exe, /\/(dash|bash|sh)$/)
      assert.equal(incidentWithWriter().sentinels[0].path, sentinel)
    } finally {
      writer?.kill('SIGKILL')
      watch.kill('SIGTERM')
      await new Promise((resolve) => watch.once('exit', resolve))
    }
  })
})

describe('fanotify unavailable', () => {
  it('the agent says so once in the log and the status, and keeps fencing through inotify', async () => {
    const node = new TestNode(tempDir())
    const sentinel = join(node.data, 'ledger.xlsx')
    const manifest = node.writeManifest(`sentinels:\n  - path: ${sentinel}\n    create: true\nfencing:\n  record: echo "$COMET_REASON" >> ${join(node.root, 'fenced.log')}\ndefault_fencing: record\n`)
    assert.equal(node.run(['init', '--manifest', manifest]).status, 0)
    const watch = node.spawn(['watch', '--interval', '3600'], {COMET_FANOTIFY_ADDON: join(node.root, 'missing.node')})
    let log = ''
    watch.stderr!.on('data', (chunk) => (log += chunk))
    try {
      await waitFor('the agent to watch', () => log.includes('watching'))
      assert.equal(log.match(/fanotify is unavailable/g)?.length, 1)
      assert.match(status(node).agent.detector, /^inotify \(fanotify unavailable: the fanotify addon is not built/)
      spawnSync('sh', ['-c', `echo encrypted >> '${sentinel}'`])
      await waitFor('the procedure', () => existsSync(join(node.root, 'fenced.log')))
      assert.equal(readFileSync(join(node.root, 'fenced.log'), 'utf8'), 'modified\n')
    } finally {
      watch.kill('SIGTERM')
      await new Promise((resolve) => watch.once('exit', resolve))
    }
  })
})
