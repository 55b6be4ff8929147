import assert from 'node:assert/strict'
import {chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {TestNode} from '../support/cli.js'
import {makeFixture} from '../support/fixture.js'
import {tempDir} from '../support/temp-dir.js'

function manifestCase(body: (data: string) => string): {node: TestNode; file: string} {
  const node = new TestNode(tempDir())
  writeFileSync(join(node.data, 'present.db'), 'data')
  return {node, file: node.writeManifest(body(node.data))}
}

const BAD_MANIFESTS: Array<{name: string; body: (data: string) => string; message: RegExp}> = [
  {name: 'a relative path', body: () => 'sentinels:\n  - path: data/x\n    create: true\nfencing:\n  a: "true"\ndefault_fencing: a\n', message: /:2: sentinels\[0\]\.path: "data\/x" must be an absolute path/},
  {name: "a path with '..'", body: (d) => `sentinels:\n  - path: ${d}/../x\n    create: true\nfencing:\n  a: "true"\ndefault_fencing: a\n`, message: /:2: sentinels\[0\]\.path: .* must not contain '\.\.'/},
  {
    name: 'a duplicate path',
    body: (d) => `sentinels:\n  - path: ${d}/x\n    create: true\n  - path: ${d}/x\n    create: true\nfencing:\n  a: "true"\ndefault_fencing: a\n`,
    message: /:4: sentinels\[1\]\.path: .* is listed twice \(first at line 2\)/,
  },
  {name: 'an unknown procedure', body: (d) => `sentinels:\n  - path: ${d}/x\n    create: true\n    fencing: nope\nfencing:\n  a: "true"\n`, message: /:4: sentinels\[0\]\.fencing: names "nope", which is not under fencing/},
  {name: 'create: false on a missing file', body: (d) => `sentinels:\n  - path: ${d}/missing.db\n    create: false\nfencing:\n  a: "true"\ndefault_fencing: a\n`, message: /:2: sentinels\[0\]\.path: create: false, but .*missing\.db does not exist/},
  {name: 'invalid YAML', body: () => 'sentinels: [\n  - path: /x\n', message: /YAML: invalid YAML/},
  {name: 'create of the wrong type', body: (d) => `sentinels:\n  - path: ${d}/x\n    create: "yes"\nfencing:\n  a: "true"\ndefault_fencing: a\n`, message: /:3: sentinels\[0\]\.create: must be true or false/},
  {name: 'a path of the wrong type', body: () => 'sentinels:\n  - path: 42\nfencing:\n  a: "true"\ndefault_fencing: a\n', message: /:2: sentinels\[0\]\.path: is required and must be a string/},
  {name: 'a misspelt field', body: (d) => `sentinals:\n  - path: ${d}/x\nfencing:\n  a: "true"\n`, message: /:1: sentinals: unknown field/},
]

describe('bad input is refused with exit 2, a message naming the culprit, and nothing written', () => {
  for (const bad of BAD_MANIFESTS)
    it(`manifest with ${bad.name}`, () => {
      const {node, file} = manifestCase(bad.body)
      const result = node.run(['init', '--manifest', file])
      assert.equal(result.status, 2, result.stderr)
      assert.match(result.stderr, bad.message)
      assert.ok(result.stderr.includes(file), 'the message names the manifest file')
      assert.equal(existsSync(node.store), false, 'no store written')
      assert.equal(existsSync(node.stateDir), false, 'no state written')
      assert.deepEqual(readdirSync(node.data), ['present.db'], 'no sentinel planted')
    })

  it('a manifest file that does not exist', () => {
    const node = new TestNode(tempDir())
    const result = node.run(['init', '--manifest', join(node.root, 'nope.yaml')])
    assert.equal(result.status, 2)
    assert.match(result.stderr, /nope\.yaml/)
  })

  it('a symlink where a sentinel is to be created: refused, the link and its target untouched', () => {
    const {node, file} = manifestCase((d) => `sentinels:\n  - path: ${d}/trap\n    create: true\nfencing:\n  a: "true"\ndefault_fencing: a\n`)
    const target = join(node.root, 'target')
    writeFileSync(target, 'precious')
    symlinkSync(target, join(node.data, 'trap'))
    const result = node.run(['init', '--manifest', file, '--json'])
    assert.equal(result.status, 2)
    assert.equal(result.json.sentinels[0].action, 'failed')
    assert.match(result.json.sentinels[0].detail, /trap already exists as a symbolic link/)
    assert.equal(readFileSync(target, 'utf8'), 'precious')
  })

  it('an embedded store writable by other users is refused: whoever writes a procedure gets root', () => {
    const f = makeFixture()
    assert.equal(f.node.run(['init', '--manifest', f.manifest]).status, 0)
    chmodSync(join(f.node.store, 'fencing'), 0o777)
    const result = f.node.run(['verify'])
    assert.equal(result.status, 2)
    assert.match(result.stderr, /fencing.*is writable by other users/)
    assert.deepEqual(f.fenceRuns(), [])
  })

  it('a procedure file in the store writable by others is refused', () => {
    const f = makeFixture()
    assert.equal(f.node.run(['init', '--manifest', f.manifest]).status, 0)
    chmodSync(join(f.node.store, 'fencing', 'record.json'), 0o666)
    const result = f.node.run(['verify'])
    assert.equal(result.status, 2)
    assert.match(result.stderr, /record\.json: is writable by other users/)
  })

  it('a state directory (cache, spool) writable by others is refused', () => {
    const f = makeFixture()
    assert.equal(f.node.run(['init', '--manifest', f.manifest]).status, 0)
    chmodSync(f.node.stateDir, 0o757)
    const result = f.node.run(['verify'])
    assert.equal(result.status, 2)
    assert.match(result.stderr, /state.*is writable by other users/)
  })

  it('bad data in the store names the key: a procedure that is not base64', () => {
    const f = makeFixture()
    assert.equal(f.node.run(['init', '--manifest', f.manifest]).status, 0)
    const file = join(f.node.store, 'fencing', 'record.json')
    const document = JSON.parse(readFileSync(file, 'utf8'))
    document.data.base64code = 'not base64!!'
    writeFileSync(file, JSON.stringify(document))
    const result = f.node.run(['verify'])
    assert.equal(result.status, 2)
    assert.match(result.stderr, /fencing\/record: base64code is not valid base64/)
  })

  it('bad data in the store names the key: a relative path in comets/<node>', () => {
    const f = makeFixture()
    assert.equal(f.node.run(['init', '--manifest', f.manifest]).status, 0)
    const file = join(f.node.store, 'comets', 'web01.json')
    const document = JSON.parse(readFileSync(file, 'utf8'))
    document.data['web01:create:relative/x'] = ''
    writeFileSync(file, JSON.stringify(document))
    const result = f.node.run(['verify'])
    assert.equal(result.status, 2)
    assert.match(result.stderr, /comets\/web01 key "web01:create:relative\/x": the path must be an absolute path/)
  })

  it('an invalid --store and an invalid node name are refused', () => {
    const node = new TestNode(tempDir())
    mkdirSync(node.root, {recursive: true})
    assert.match(node.run(['verify', '--store', 'http://x']).stderr, /invalid store "http:\/\/x"/)
    const bad = node.run(['verify', '--node', '../etc'])
    assert.equal(bad.status, 2)
    assert.match(bad.stderr, /invalid node name "\.\.\/etc"/)
  })
})
