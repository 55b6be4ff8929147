import {chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import assert from 'node:assert/strict'

import {CasConflictError, StoreDataError, UnsafePathError, UsageError} from '../../../src/core/errors/index.js'
import {EmbeddedStore} from '../../../src/core/store/embedded.js'
import {tempDir} from '../../support/temp-dir.js'

const base = tempDir('comet-embedded-')
let counter = 0

/** A store whose root does not exist yet, in its own folder. */
function freshStore(): {store: EmbeddedStore; root: string; folder: string} {
  const folder = join(base, `case-${counter++}`)
  mkdirSync(folder, {mode: 0o700})
  const root = join(folder, 'store')
  return {store: new EmbeddedStore(root), root, folder}
}

function mode(path: string): number {
  return statSync(path).mode & 0o7777
}

describe('EmbeddedStore read and write', () => {
  it('reads an absent document as null, whether or not the root exists', async () => {
    const {store} = freshStore()
    assert.equal(await store.read('comets/web01'), null)
    await store.write('comets/db01', {a: '1'})
    assert.equal(await store.read('comets/web01'), null)
  })

  it('round-trips a document and counts versions 1, 2, 3', async () => {
    const {store} = freshStore()
    assert.equal(await store.write('comets/web01', {key: 'first'}), 1)
    assert.deepEqual(await store.read('comets/web01'), {data: {key: 'first'}, version: 1})
    assert.equal(await store.write('comets/web01', {key: 'second'}), 2)
    assert.equal(await store.write('comets/web01', {key: 'third', nested: {n: 3}}), 3)
    assert.deepEqual(await store.read('comets/web01'), {data: {key: 'third', nested: {n: 3}}, version: 3})
  })

  it('sees what another instance on the same root wrote', async () => {
    const {store, root} = freshStore()
    await store.write('fencing/shutdown', {base64code: 'ZWNobw=='})
    const other = new EmbeddedStore(root)
    assert.deepEqual(await other.read('fencing/shutdown'), {data: {base64code: 'ZWNobw=='}, version: 1})
  })

  it('leaves no lock or temporary file behind after a write', async () => {
    const {store, root} = freshStore()
    await store.write('comets/web01', {a: '1'})
    await store.write('comets/web01', {a: '2'})
    assert.deepEqual(readdirSync(join(root, 'comets')), ['web01.json'])
  })

  it('writes even when a lock file was left behind by a process that no longer exists', async () => {
    const {store, root} = freshStore()
    await store.write('comets/web01', {a: '1'})
    writeFileSync(join(root, 'comets', 'web01.json.lock'), '2147483646\n', {mode: 0o600})
    assert.equal(await store.write('comets/web01', {a: '2'}), 2)
    assert.deepEqual((await store.read('comets/web01'))?.data, {a: '2'})
  })
})

describe('EmbeddedStore check-and-set', () => {
  it('accepts cas 0 for a document that does not exist yet', async () => {
    const {store} = freshStore()
    assert.equal(await store.write('comets/web01', {a: '1'}, {cas: 0}), 1)
  })

  it('refuses cas 0 once the document exists, and keeps the content', async () => {
    const {store} = freshStore()
    await store.write('comets/web01', {a: 'original'})
    await assert.rejects(store.write('comets/web01', {a: 'intruder'}, {cas: 0}), CasConflictError)
    assert.deepEqual(await store.read('comets/web01'), {data: {a: 'original'}, version: 1})
  })

  it('accepts the current version as cas', async () => {
    const {store} = freshStore()
    await store.write('comets/web01', {a: '1'})
    await store.write('comets/web01', {a: '2'})
    assert.equal(await store.write('comets/web01', {a: '3'}, {cas: 2}), 3)
  })

  it('refuses a stale cas with CasConflictError naming the path, and leaves the document unchanged', async () => {
    const {store} = freshStore()
    await store.write('comets/web01', {a: '1'})
    await store.write('comets/web01', {a: '2'})
    await assert.rejects(store.write('comets/web01', {a: 'late'}, {cas: 1}), (error: unknown) => {
      assert.ok(error instanceof CasConflictError)
      assert.match(error.message, /comets\/web01/)
      return true
    })
    assert.deepEqual(await store.read('comets/web01'), {data: {a: '2'}, version: 2})
  })

  it('refuses a cas from the future on a missing document and creates nothing', async () => {
    const {store, root} = freshStore()
    await assert.rejects(store.write('comets/web01', {a: '1'}, {cas: 4}), CasConflictError)
    assert.equal(await store.read('comets/web01'), null)
    assert.deepEqual(readdirSync(join(root, 'comets')), [])
  })
})

describe('EmbeddedStore list', () => {
  it('lists the documents of a folder, sorted, without the .json suffix', async () => {
    const {store} = freshStore()
    for (const name of ['web02', 'app', 'db01', 'web01']) await store.write(`comets/${name}`, {})
    await store.write('fencing/shutdown', {})
    assert.deepEqual(await store.list('comets'), ['app', 'db01', 'web01', 'web02'])
    assert.deepEqual(await store.list('fencing'), ['shutdown'])
  })

  it('lists an absent folder as empty, with or without a root', async () => {
    const {store} = freshStore()
    assert.deepEqual(await store.list('comets'), [])
    await store.write('fencing/shutdown', {})
    assert.deepEqual(await store.list('comets'), [])
  })
})

describe('EmbeddedStore paths', () => {
  for (const path of ['../x', 'a//b', 'comets/../x', '/abs', 'comets/', '', 'comets/.hidden', 'a b']) {
    it(`refuses the store path ${JSON.stringify(path)} with UsageError`, async () => {
      const {store, folder} = freshStore()
      await assert.rejects(store.read(path), UsageError)
      await assert.rejects(store.write(path, {a: '1'}), UsageError)
      await assert.rejects(store.list(path), UsageError)
      assert.deepEqual(readdirSync(folder), [], 'nothing is created for a refused path')
    })
  }
})

describe('EmbeddedStore refuses unsafe files', () => {
  it('refuses a store root writable by others (0777), naming it', async () => {
    const {store, root} = freshStore()
    await store.write('comets/web01', {a: '1'})
    chmodSync(root, 0o777)
    for (const attempt of [() => store.read('comets/web01'), () => store.write('comets/web01', {a: '2'}), () => store.list('comets')])
      await assert.rejects(attempt(), (error: unknown) => {
        assert.ok(error instanceof UnsafePathError, String(error))
        assert.ok(error.message.includes(root), error.message)
        return true
      })
    chmodSync(root, 0o700)
    assert.deepEqual(await store.read('comets/web01'), {data: {a: '1'}, version: 1})
  })

  it('refuses to read a document whose folder is writable by others (0777), naming the folder', async () => {
    const {store, root} = freshStore()
    await store.write('comets/web01', {a: '1'})
    const folder = join(root, 'comets')
    chmodSync(folder, 0o777)
    await assert.rejects(store.read('comets/web01'), (error: unknown) => {
      assert.ok(error instanceof UnsafePathError, `expected UnsafePathError, got ${String(error)}`)
      assert.ok(error.message.includes(folder), error.message)
      return true
    })
  })

  it('refuses to write into a folder writable by others (0777), naming the folder', async () => {
    const {store, root} = freshStore()
    await store.write('comets/web01', {a: '1'})
    const folder = join(root, 'comets')
    chmodSync(folder, 0o777)
    await assert.rejects(store.write('comets/web01', {a: '2'}), (error: unknown) => {
      assert.ok(error instanceof UnsafePathError, String(error))
      assert.ok(error.message.includes(folder), error.message)
      return true
    })
  })

  it('refuses a document that is a symbolic link, and never writes through it', async () => {
    const {store, root, folder} = freshStore()
    await store.write('comets/web01', {a: '1'})
    const target = join(folder, 'elsewhere.json')
    const original = JSON.stringify({version: 1, data: {a: 'target'}})
    writeFileSync(target, original, {mode: 0o600})
    const document = join(root, 'comets', 'db01.json')
    symlinkSync(target, document)
    await assert.rejects(store.read('comets/db01'), (error: unknown) => {
      assert.ok(error instanceof UnsafePathError, String(error))
      assert.ok(error.message.includes(document), error.message)
      return true
    })
    await assert.rejects(store.write('comets/db01', {a: 'evil'}), UnsafePathError)
    assert.equal(readFileSync(target, 'utf8'), original)
  })

  it('refuses a document writable by others (0666), naming it', async () => {
    const {store, root} = freshStore()
    await store.write('comets/web01', {a: '1'})
    const document = join(root, 'comets', 'web01.json')
    chmodSync(document, 0o666)
    await assert.rejects(store.read('comets/web01'), (error: unknown) => {
      assert.ok(error instanceof UnsafePathError, String(error))
      assert.ok(error.message.includes(document), error.message)
      return true
    })
    await assert.rejects(store.write('comets/web01', {a: '2'}), UnsafePathError)
  })

  it('reports invalid JSON in a document as StoreDataError naming the file', async () => {
    const {store, root} = freshStore()
    await store.write('comets/web01', {a: '1'})
    const document = join(root, 'comets', 'web01.json')
    writeFileSync(document, '{"version": 1, "data": {', {mode: 0o600})
    await assert.rejects(store.read('comets/web01'), (error: unknown) => {
      assert.ok(error instanceof StoreDataError, String(error))
      assert.ok(error.message.includes(document), error.message)
      return true
    })
  })

  it('reports valid JSON that is not a store document as StoreDataError naming the path', async () => {
    const {store, root} = freshStore()
    await store.write('comets/web01', {a: '1'})
    writeFileSync(join(root, 'comets', 'web01.json'), '{"a": "1"}\n', {mode: 0o600})
    await assert.rejects(store.read('comets/web01'), (error: unknown) => {
      assert.ok(error instanceof StoreDataError, String(error))
      assert.match(error.message, /comets\/web01/)
      return true
    })
  })
})

describe('EmbeddedStore on disk', () => {
  it('writes documents 0600 and directories 0700', async () => {
    const {store, root} = freshStore()
    await store.write('comets/web01', {a: '1'})
    assert.equal(mode(root), 0o700)
    assert.equal(mode(join(root, 'comets')), 0o700)
    assert.equal(mode(join(root, 'comets', 'web01.json')), 0o600)
  })

  it('keeps a document 0600 when it is replaced', async () => {
    const {store, root} = freshStore()
    await store.write('comets/web01', {a: '1'})
    await store.write('comets/web01', {a: '2'})
    assert.equal(mode(join(root, 'comets', 'web01.json')), 0o600)
  })

  it('creates nothing on disk for read and list when the root is missing', async () => {
    const {folder} = freshStore()
    const root = join(folder, 'deep', 'er', 'store')
    const store = new EmbeddedStore(root)
    assert.equal(await store.read('comets/web01'), null)
    assert.deepEqual(await store.list('comets'), [])
    assert.deepEqual(await store.list('fencing'), [])
    assert.equal(existsSync(join(folder, 'deep')), false)
    assert.deepEqual(readdirSync(folder), [])
  })
})
