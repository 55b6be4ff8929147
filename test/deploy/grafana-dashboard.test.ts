import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {parse} from 'yaml'

import {dashboard, panelQueries, REPO} from './deploy-files.js'

const TSC = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc')

describe('the OORT Panel dashboard (deploy/grafana)', () => {
  it('the committed JSON is exactly what deploy/grafana/dashboard.ts generates (npm run dashboard)', () => {
    const build = spawnSync(process.execPath, [TSC, '-p', join(REPO, 'deploy', 'grafana', 'tsconfig.json')], {cwd: REPO, encoding: 'utf8', timeout: 120_000})
    assert.equal(build.status, 0, `${build.stdout}${build.stderr}`)
    const check = spawnSync(process.execPath, [join(REPO, 'deploy', 'grafana', 'dist', 'dashboard.js'), '--check'], {cwd: REPO, encoding: 'utf8', timeout: 60_000})
    assert.equal(check.status, 0, `${check.stdout}${check.stderr}`)
  })

  it('has the panels an operator looks for, each querying Prometheus through the datasource variable', () => {
    const board = dashboard()
    assert.equal(board.title, 'OORT Panel')
    assert.equal(board.uid, 'comet-oort-panel')
    const titles = board.panels.filter((panel) => panel.type !== 'row').map((panel) => panel.title)
    for (const wanted of ['Nodes by state', 'Incident timeline', 'Heartbeat age per node', 'Detection to fence latency', 'Store health', 'Sentinels per node', 'Fencing started per procedure'])
      assert.ok(titles.includes(wanted), `no panel "${wanted}" among ${titles.join(', ')}`)
    for (const panel of board.panels.filter((candidate) => candidate.type !== 'row')) {
      assert.ok((panel.targets ?? []).length > 0, `${panel.title} has no query`)
      for (const target of panel.targets ?? []) assert.deepEqual(target.datasource, {type: 'prometheus', uid: '${datasource}'}, `${panel.title} ${target.refId}`)
    }
    assert.ok(panelQueries(board).some((query) => query.expr.includes('histogram_quantile(0.99') && query.expr.includes('comet_agent_detection_to_fence_seconds_bucket')))
    const variables = board.templating.list.map((variable) => `${variable.type}:${variable.name}`)
    assert.deepEqual(variables, ['datasource:datasource', 'query:node'])
  })

  it('lays the panels out without overlap, within the 24-column grid', () => {
    const cells = new Set<string>()
    for (const panel of dashboard().panels) {
      const {x, y, w, h} = panel.gridPos
      assert.ok(x >= 0 && w > 0 && x + w <= 24, `${panel.title}: ${JSON.stringify(panel.gridPos)}`)
      for (let row = y; row < y + h; row++)
        for (let column = x; column < x + w; column++) {
          const cell = `${column},${row}`
          assert.ok(!cells.has(cell), `${panel.title} overlaps another panel at ${cell}`)
          cells.add(cell)
        }
    }
  })

  it('provisions a Prometheus datasource and a file provider for the dashboard', () => {
    const datasources = parse(readFileSync(join(REPO, 'deploy', 'grafana', 'provisioning', 'datasources', 'prometheus.yml'), 'utf8'))
    assert.equal(datasources.apiVersion, 1)
    assert.deepEqual(
      datasources.datasources.map((source: {type: string}) => source.type),
      ['prometheus'],
    )
    const providers = parse(readFileSync(join(REPO, 'deploy', 'grafana', 'provisioning', 'dashboards', 'comet.yml'), 'utf8'))
    assert.equal(providers.apiVersion, 1)
    assert.equal(providers.providers[0].type, 'file')
    assert.ok(providers.providers[0].options.path)
  })
})
