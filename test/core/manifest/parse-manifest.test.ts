import {mkdirSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import assert from 'node:assert/strict'

import {CometError, ManifestError} from '../../../src/core/errors/index.js'
import {loadManifest, parseManifest} from '../../../src/core/manifest/parse-manifest.js'
import {tempDir} from '../../support/temp-dir.js'

const dir = tempDir('comet-manifest-')
const data = join(dir, 'data')
mkdirSync(data, {mode: 0o700})
const existing = join(data, 'orders.db')
writeFileSync(existing, 'pretend database\n')
const link = join(data, 'link.db')
symlinkSync(existing, link)
const FILE = '/etc/comet/manifest.yaml'

/** The 1-based line of the first line of `text` containing `marker`. */
function lineOf(text: string, marker: string): number {
  const index = text.split('\n').findIndex((line) => line.includes(marker))
  assert.ok(index >= 0, `marker ${marker} is not in the manifest`)
  return index + 1
}

/** Asserts that parsing fails with a ManifestError `FILE:LINE: field: ...` and returns the error for more checks. */
function assertRejected(text: string, field: string, line: number, problem?: RegExp): ManifestError {
  let caught: unknown
  try {
    parseManifest(FILE, text)
  } catch (error) {
    caught = error
  }
  assert.ok(caught instanceof ManifestError, `expected a ManifestError, got ${String(caught)}`)
  assert.ok(caught.message.startsWith(`${FILE}:${line}: ${field}: `), `message ${JSON.stringify(caught.message)} should start with ${FILE}:${line}: ${field}: `)
  assert.equal(caught.field, field)
  assert.equal(caught.line, line)
  if (problem) assert.match(caught.message, problem)
  return caught
}

const VALID = `node: web01
sentinels:
  - path: ${data}/.~lock.ledger.ods#
    create: true
  - path: ${existing}
    create: false
    fencing: stop-db
  - path: ${data}/aaa-invoices.xlsx
    create: true
fencing:
  isolate: iptables -P INPUT DROP
  stop-db: |
    systemctl stop postgresql
    sync
default_fencing: isolate
`

describe('parseManifest: a valid manifest', () => {
  it('parses node, sentinels, fencing and default_fencing', () => {
    const manifest = parseManifest(FILE, VALID)
    assert.equal(manifest.file, FILE)
    assert.equal(manifest.node, 'web01')
    assert.equal(manifest.defaultFencing, 'isolate')
    assert.deepEqual(manifest.fencing, {isolate: 'iptables -P INPUT DROP', 'stop-db': 'systemctl stop postgresql\nsync\n'})
    assert.deepEqual(
      manifest.sentinels.map(({path, create, procedure}) => ({path, create, procedure})),
      [
        {path: `${data}/.~lock.ledger.ods#`, create: true, procedure: 'isolate'},
        {path: existing, create: false, procedure: 'stop-db'},
        {path: `${data}/aaa-invoices.xlsx`, create: true, procedure: 'isolate'},
      ],
    )
  })

  it('records the line of each sentinel', () => {
    const manifest = parseManifest(FILE, VALID)
    assert.deepEqual(
      manifest.sentinels.map((sentinel) => sentinel.line),
      [lineOf(VALID, '.~lock'), lineOf(VALID, `path: ${existing}`), lineOf(VALID, 'aaa-invoices')],
    )
  })

  it('accepts a manifest without node and without default_fencing when every sentinel names its procedure', () => {
    const manifest = parseManifest(FILE, `sentinels:\n  - path: ${existing}\n    fencing: isolate\nfencing:\n  isolate: poweroff\n`)
    assert.equal(manifest.node, undefined)
    assert.equal(manifest.defaultFencing, undefined)
    assert.deepEqual(
      manifest.sentinels.map(({path, create, procedure}) => ({path, create, procedure})),
      [{path: existing, create: false, procedure: 'isolate'}],
    )
  })

  it('loadManifest reads the file from disk', () => {
    const file = join(dir, 'manifest.yaml')
    writeFileSync(file, VALID)
    const manifest = loadManifest(file)
    assert.equal(manifest.file, file)
    assert.equal(manifest.sentinels.length, 3)
  })

  it('loadManifest reports a missing file, naming it', () => {
    const file = join(dir, 'absent.yaml')
    assert.throws(
      () => loadManifest(file),
      (error: unknown) => error instanceof CometError && error.message.includes(file),
    )
  })

  it('loadManifest reports errors with the file it read', () => {
    const file = join(dir, 'typo.yaml')
    writeFileSync(file, 'sentinals: []\n')
    assert.throws(
      () => loadManifest(file),
      (error: unknown) => error instanceof ManifestError && error.message.startsWith(`${file}:1: sentinals: `),
    )
  })
})

describe('parseManifest: bad sentinel paths', () => {
  it('refuses a relative path', () => {
    const text = `sentinels:\n  - path: ${existing}\n  - path: data/relative.db\n    create: true\nfencing:\n  isolate: poweroff\ndefault_fencing: isolate\n`
    assertRejected(text, 'sentinels[1].path', lineOf(text, 'data/relative.db'), /absolute/)
  })

  it("refuses a path with '..'", () => {
    const text = `sentinels:\n  - path: ${data}/../data/orders.db\nfencing:\n  isolate: poweroff\ndefault_fencing: isolate\n`
    assertRejected(text, 'sentinels[0].path', lineOf(text, '/../'), /\.\./)
  })

  it('refuses a path listed twice, naming the line of the first', () => {
    const text = `sentinels:\n  - path: ${existing}\n    create: false\n  - path: ${data}/new.xlsx\n    create: true\n  - path: ${existing}\nfencing:\n  isolate: poweroff\ndefault_fencing: isolate\n`
    const first = lineOf(text, `path: ${existing}`)
    const second = text.split('\n').findIndex((line, index) => index + 1 > first && line.includes(`path: ${existing}`)) + 1
    const error = assertRejected(text, 'sentinels[2].path', second, /twice/)
    assert.match(error.message, new RegExp(`first at line ${first}\\b`))
  })

  it('refuses a path with a control character (a newline), on one line of message', () => {
    const text = `sentinels:\n  - path: "${data}/a\\nb.db"\n    create: true\nfencing:\n  isolate: poweroff\ndefault_fencing: isolate\n`
    const error = assertRejected(text, 'sentinels[0].path', 2, /control character/)
    assert.ok(!error.message.includes('\n'), 'the raw newline is not echoed into the message')
  })
})

describe('parseManifest: procedures', () => {
  it('refuses a sentinel naming an unknown procedure', () => {
    const text = `sentinels:\n  - path: ${existing}\n    fencing: isolat\nfencing:\n  isolate: poweroff\n`
    assertRejected(text, 'sentinels[0].fencing', lineOf(text, 'fencing: isolat'), /"isolat"/)
  })

  it('refuses an unknown default_fencing', () => {
    const text = `sentinels:\n  - path: ${existing}\nfencing:\n  isolate: poweroff\ndefault_fencing: shutdown\n`
    assertRejected(text, 'default_fencing', lineOf(text, 'default_fencing'), /"shutdown"/)
  })

  it('refuses a sentinel with no procedure when there is no default_fencing', () => {
    const text = `sentinels:\n  - path: ${existing}\nfencing:\n  isolate: poweroff\n`
    assertRejected(text, 'sentinels[0].fencing', lineOf(text, 'path:'), /default_fencing/)
  })

  it('refuses fencing that is not a mapping', () => {
    const text = `sentinels:\n  - path: ${existing}\nfencing:\n  - poweroff\n`
    assertRejected(text, 'fencing', lineOf(text, '- poweroff'), /mapping/)
  })

  it('refuses a procedure too long to be one argument of sh -c, naming its line', () => {
    const text = `sentinels:\n  - path: ${existing}\n    fencing: isolate\nfencing:\n  isolate: "# ${'x'.repeat(128 * 1024)}"\n`
    assertRejected(text, 'fencing.isolate', lineOf(text, 'isolate: "#'), /bytes: a procedure runs as one argument of sh -c/)
  })

  it('refuses a procedure whose command is not a string', () => {
    const text = `sentinels:\n  - path: ${existing}\n    fencing: isolate\nfencing:\n  isolate:\n    cmd: poweroff\n`
    assertRejected(text, 'fencing.isolate', lineOf(text, 'cmd: poweroff'))
  })
})

describe('parseManifest: the files on disk', () => {
  it('refuses create: false on a file that does not exist', () => {
    const text = `sentinels:\n  - path: ${data}/missing.db\n    create: false\nfencing:\n  isolate: poweroff\ndefault_fencing: isolate\n`
    assertRejected(text, 'sentinels[0].path', lineOf(text, 'missing.db'), /does not exist/)
  })

  it('refuses create: false on a symbolic link, even to a real file', () => {
    const text = `sentinels:\n  - path: ${link}\n    create: false\nfencing:\n  isolate: poweroff\ndefault_fencing: isolate\n`
    assertRejected(text, 'sentinels[0].path', lineOf(text, 'link.db'), /symbolic link/)
  })

  it('refuses create: false on a directory', () => {
    const text = `sentinels:\n  - path: ${data}\nfencing:\n  isolate: poweroff\ndefault_fencing: isolate\n`
    assertRejected(text, 'sentinels[0].path', lineOf(text, 'path:'), /not a regular file/)
  })

  it('refuses create: true when the directory is missing', () => {
    const text = `sentinels:\n  - path: ${data}/no-such-dir/lock.xlsx\n    create: true\nfencing:\n  isolate: poweroff\ndefault_fencing: isolate\n`
    assertRejected(text, 'sentinels[0].path', lineOf(text, 'no-such-dir'), /no-such-dir/)
  })
})

describe('parseManifest: syntax and types', () => {
  it('refuses invalid YAML, naming the line of the error', () => {
    const text = `sentinels:\n  - path: ${existing}\nfencing:\n  isolate: poweroff: now\ndefault_fencing: isolate\n`
    assertRejected(text, 'YAML', 4, /invalid YAML/)
  })

  it('refuses a duplicate key as invalid YAML, naming the line of the second one', () => {
    const text = `sentinels:\n  - path: ${existing}\nfencing:\n  isolate: poweroff\nfencing:\n  other: reboot\n`
    assertRejected(text, 'YAML', 5, /invalid YAML/)
  })

  it('refuses create: "yes"', () => {
    const text = `sentinels:\n  - path: ${existing}\n    create: "yes"\nfencing:\n  isolate: poweroff\ndefault_fencing: isolate\n`
    assertRejected(text, 'sentinels[0].create', lineOf(text, 'create:'), /true or false/)
  })

  it('refuses path: 42', () => {
    const text = `sentinels:\n  - path: 42\nfencing:\n  isolate: poweroff\ndefault_fencing: isolate\n`
    assertRejected(text, 'sentinels[0].path', lineOf(text, 'path: 42'), /string/)
  })

  it('refuses an empty sentinels list', () => {
    const text = `sentinels: []\nfencing:\n  isolate: poweroff\ndefault_fencing: isolate\n`
    assertRejected(text, 'sentinels', 1, /non-empty/)
  })

  it('refuses a sentinel that is not a mapping', () => {
    const text = `sentinels:\n  - ${existing}\nfencing:\n  isolate: poweroff\ndefault_fencing: isolate\n`
    assertRejected(text, 'sentinels[0]', 2, /mapping/)
  })

  it('refuses an unknown top-level key (typo sentinals)', () => {
    const text = `node: web01\nsentinals:\n  - path: ${existing}\nfencing:\n  isolate: poweroff\ndefault_fencing: isolate\n`
    assertRejected(text, 'sentinals', 2, /unknown field/)
  })

  it('refuses an unknown key in a sentinel', () => {
    const text = `sentinels:\n  - path: ${existing}\n    fencng: isolate\nfencing:\n  isolate: poweroff\ndefault_fencing: isolate\n`
    assertRejected(text, 'sentinels[0].fencng', 3, /unknown field/)
  })

  it('refuses a node name that cannot be a store path segment', () => {
    const text = `node: ../web01\nsentinels:\n  - path: ${existing}\nfencing:\n  isolate: poweroff\ndefault_fencing: isolate\n`
    assertRejected(text, 'node', 1)
  })

  it('refuses a sentinel with no procedure when there is no fencing section', () => {
    const text = `sentinels:\n  - path: ${existing}\n`
    assert.throws(() => parseManifest(FILE, text), (error: unknown) => error instanceof ManifestError && error.field === 'sentinels[0].fencing' && /no default_fencing/.test(error.message))
  })

  it('accepts the built-in procedures freeze and kill without a fencing section, and read policies', () => {
    const manifest = parseManifest(FILE, `sentinels:\n  - path: ${existing}\n    on_read: deny\n    fencing: kill\ndefault_fencing: freeze\nallow_readers:\n  - /usr/bin/restic\n`)
    assert.equal(manifest.sentinels[0].procedure, 'kill')
    assert.equal(manifest.sentinels[0].onRead, 'deny')
    assert.deepEqual(manifest.allowReaders, ['/usr/bin/restic'])
    assert.deepEqual(manifest.fencing, {})
  })

  it('refuses an unknown read policy, naming the field', () => {
    assert.throws(() => parseManifest(FILE, `sentinels:\n  - path: ${existing}\n    on_read: maybe\ndefault_fencing: freeze\n`), /sentinels\[0\]\.on_read: must be one of deny, freeze, fence, allow/)
  })
})
