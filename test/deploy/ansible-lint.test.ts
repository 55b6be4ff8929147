import assert from 'node:assert/strict'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, it} from 'node:test'

import {runTool, requireTool} from './deploy-files.js'
import {tempDir} from '../support/temp-dir.js'

const run = runTool
const ANSIBLE_DIR = fileURLToPath(new URL('../../../deploy/ansible/', import.meta.url))



describe('deploy/ansible', () => {
  const home = tempDir('comet-lint-')

  it('ansible-lint is clean with the production profile', async () => {
    requireTool('ansible-lint', 'ansible-lint')
    requireTool('ansible-playbook', 'ansible')
    // deploy/ansible/.ansible-lint sets profile: production and offline: true (no Galaxy access); both are
    // repeated here so that the test does not depend on the file being found. HOME keeps its cache private.
    const result = await run('ansible-lint', ['--offline', '--profile', 'production', '--nocolor', '-c', join(ANSIBLE_DIR, '.ansible-lint')], {
      cwd: ANSIBLE_DIR,
      env: {...process.env, HOME: home, XDG_CACHE_HOME: join(home, '.cache'), NO_COLOR: '1', ANSIBLE_ROLES_PATH: join(ANSIBLE_DIR, 'roles')},
    })
    assert.equal(result.status, 0, result.output)
    assert.match(result.output, /Passed with production profile: 0 failure\(s\), 0 warning\(s\)/, result.output)
  })

  it('ansible-playbook --syntax-check accepts site.yml with the example inventory', async () => {
    requireTool('ansible-playbook', 'ansible')
    const result = await run('ansible-playbook', ['--syntax-check', '-i', 'inventory/example', 'site.yml'], {
      cwd: ANSIBLE_DIR,
      env: {...process.env, HOME: home, ANSIBLE_ROLES_PATH: join(ANSIBLE_DIR, 'roles'), ANSIBLE_NOCOLOR: '1'},
    })
    assert.equal(result.status, 0, result.output)
  })
})
