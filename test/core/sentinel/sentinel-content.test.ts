import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {sentinelContent} from '../../../src/core/sentinel/sentinel-content.js'

describe('sentinel content', () => {
  it('starts with the header of the file type and has its typical size', () => {
    assert.equal(sentinelContent('/d/a.pdf').subarray(0, 5).toString(), '%PDF-')
    assert.equal(sentinelContent('/d/a.docx').subarray(0, 4).toString('hex'), '504b0304')
    assert.equal(sentinelContent('/d/a.db').subarray(0, 16).toString('latin1'), 'SQLite format 3\0')
    assert.equal(sentinelContent('/d/a.pdf').length, 48 * 1024)
    assert.equal(sentinelContent('/d/.~lock.ledger.ods#').length, 4096)
  })

  it('is random: two sentinels of one type differ', () => {
    assert.notDeepEqual(sentinelContent('/d/a.xlsx'), sentinelContent('/d/b.xlsx'))
  })
})
