import {describe, it} from 'node:test'
import assert from 'node:assert/strict'

import {StoreDataError} from '../../../src/core/errors/index.js'
import {MAX_PROCEDURE_BYTES} from '../../../src/core/fence/procedure-run.js'
import {decodeProcedure, encodeProcedure} from '../../../src/core/topology/fencing-document.js'

const KEY = 'fencing/isolate'

function assertRefused(data: Record<string, unknown>, problem: RegExp): void {
  assert.throws(
    () => decodeProcedure(KEY, data),
    (error: unknown) => {
      assert.ok(error instanceof StoreDataError, `expected StoreDataError, got ${String(error)}`)
      assert.ok(error.message.includes(KEY), error.message)
      assert.match(error.message, problem)
      return true
    },
  )
}

describe('decodeProcedure', () => {
  it('decodes the base64code of a seed document', () => {
    assert.equal(decodeProcedure(KEY, {base64code: Buffer.from('iptables -P INPUT DROP').toString('base64')}), 'iptables -P INPUT DROP')
  })

  it('accepts base64 wrapped over several lines, as base64(1) prints it', () => {
    const command = 'systemctl stop postgresql && sync && echo fenced by comet >> /var/log/comet-fence.log'
    const wrapped = Buffer.from(command).toString('base64').replace(/(.{76})/g, '$1\n')
    assert.ok(wrapped.includes('\n'))
    assert.equal(decodeProcedure(KEY, {base64code: wrapped}), command)
  })

  it("refuses what is not base64 ('not base64!!')", () => {
    assertRefused({base64code: 'not base64!!'}, /not valid base64/)
  })

  it('refuses base64 of the wrong length', () => {
    assertRefused({base64code: 'ZWNobw'}, /not valid base64/)
  })

  it('refuses an empty base64code', () => {
    assertRefused({base64code: ''}, /empty/)
  })

  it('refuses a base64code of only whitespace', () => {
    assertRefused({base64code: ' \n '}, /empty/)
  })

  it('refuses a document without base64code', () => {
    assertRefused({code: 'ZWNobw=='}, /base64code/)
  })

  it('refuses a base64code that is not a string', () => {
    assertRefused({base64code: 42}, /base64code/)
  })

  it('refuses bytes that are not UTF-8 text', () => {
    assertRefused({base64code: Buffer.from([0xff, 0xfe, 0x00, 0x41]).toString('base64')}, /UTF-8/)
  })

  it('refuses a command with a NUL byte', () => {
    assertRefused({base64code: Buffer.from('echo a\u0000b').toString('base64')}, /NUL/)
  })

  it('refuses a command longer than one argument of sh -c may be, and takes one just within it', () => {
    const within = `# ${'x'.repeat(MAX_PROCEDURE_BYTES - 3)}\n`
    assert.equal(Buffer.byteLength(within), MAX_PROCEDURE_BYTES)
    assert.equal(decodeProcedure('fencing/big', encodeProcedure(within) as unknown as Record<string, unknown>), within)
    assertRefused({base64code: Buffer.from(within + 'x').toString('base64')}, /131071 bytes: a procedure runs as one argument of sh -c/)
  })
})

describe('encodeProcedure', () => {
  it('produces a seed document {base64code}', () => {
    assert.deepEqual(encodeProcedure('echo'), {base64code: 'ZWNobw=='})
  })

  for (const command of [
    'poweroff',
    'systemctl stop postgresql\nsync\n',
    'logger "comet: sentinel $COMET_SENTINEL — $COMET_REASON" ✓\necho "日本語" > /tmp/x\n\ttabbed',
    "printf '%s\\n' \"$COMET_INCIDENT\" 🚨",
  ])
    it(`round-trips ${JSON.stringify(command).slice(0, 40)}… through decodeProcedure`, () => {
      assert.equal(decodeProcedure(KEY, {...encodeProcedure(command)}), command)
    })
})
