import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {sentinelPathProblem} from '../../../src/core/sentinel/sentinel-path.js'

describe('sentinelPathProblem', () => {
  it('accepts absolute, normalised file paths, dots inside names included', () => {
    for (const path of ['/srv/data/.~lock.ledger.ods#', '/a', '/srv/..hidden', '/srv/.../x', '/srv/a.b/c..d', '/srv/ä/ü.docx'])
      assert.equal(sentinelPathProblem(path), undefined, path)
  })

  it('names what is wrong with a path that cannot be a sentinel', () => {
    const cases: [string, RegExp][] = [
      ['', /empty/],
      ['srv/x', /absolute/],
      ['/srv/x\ny', /control character/],
      ['/srv/\u007f', /control character/],
      ['/srv/../etc/shadow', /'\.\.'/],
      ['/srv/x/..', /'\.\.'/],
      ['/', /not a directory/],
      ['/srv/data/', /not a directory/],
      ['/srv//x', /did you mean \/srv\/x/],
      ['/srv/./x', /did you mean \/srv\/x/],
      ['/srv/x/.', /did you mean \/srv\/x/],
      [`/${'a'.repeat(4095)}`, /PATH_MAX/],
    ]
    for (const [path, problem] of cases) assert.match(sentinelPathProblem(path) ?? 'accepted', problem, JSON.stringify(path))
  })
})
