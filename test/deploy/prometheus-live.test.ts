/**
 * A real Prometheus scraping a real `comet export` and a real `comet watch --metrics-listen` over a fixture store,
 * with the committed scrape config (targets and intervals swapped for the test's), rules and dashboard: a sentinel
 * is tampered so that the node is fenced, and everything the OORT panel and the alerts ask of Prometheus is asked.
 */
import assert from 'node:assert/strict'
import {spawn, type ChildProcess} from 'node:child_process'
import {appendFileSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {parse, stringify} from 'yaml'

import {makeFixture, waitFor} from '../support/fixture.js'
import {freePort} from '../support/vault-server.js'
import {alertRules, dashboard, metricNames, panelQueries, PROMETHEUS_CONFIG, prometheusBinary, promtool, RULES, substituteVariables} from './deploy-files.js'

const NODE = 'web01'
const VARIABLES = {node: NODE, rateInterval: '1m', interval: '15s', range: '5m'}

interface Started {
  name: string
  child: ChildProcess
  log: () => string
}

const started: Started[] = []

// Registered before the fixture's temporary folder, so that everything is stopped before that folder goes.
after(async () => {
  await Promise.all(started.map((process) => stop(process)))
})

const f = makeFixture(NODE)
const init = f.node.run(['init', '--manifest', f.manifest])
assert.equal(init.status, 0, init.stderr)

function track(name: string, child: ChildProcess): Started {
  let log = ''
  child.stdout?.on('data', (chunk) => (log += chunk))
  child.stderr?.on('data', (chunk) => (log += chunk))
  const entry = {name, child, log: () => log}
  started.push(entry)
  return entry
}

async function stop({child}: Started): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  await exited
  clearTimeout(timer)
}

/** Polls an async check until it returns a value; a bound for correctness, not a timing assertion. */
async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined) return value
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

let prometheus = ''
let exporterUrl = ''
let agentUrl = ''

interface Sample {
  metric: Record<string, string>
  value: [number, string]
}

async function api<T>(path: string): Promise<T> {
  const response = await fetch(`${prometheus}${path}`)
  const body = (await response.json()) as {status: string; data: T; error?: string; errorType?: string}
  if (body.status !== 'success') throw new Error(`${path}: ${body.errorType}: ${body.error}`)
  return body.data
}

async function query(expr: string): Promise<Sample[]> {
  const data = await api<{resultType: string; result: Sample[]}>(`/api/v1/query?query=${encodeURIComponent(expr)}`)
  assert.equal(data.resultType, 'vector', `${expr} should return an instant vector, not a ${data.resultType}`)
  return data.result
}

describe('Prometheus scraping comet export and comet watch, with the OORT panel and the alert rules', {timeout: 240_000}, () => {
  before(async () => {
    const [exporterPort, agentPort, prometheusPort] = [await freePort(), await freePort(), await freePort()]
    exporterUrl = `http://127.0.0.1:${exporterPort}`
    agentUrl = `http://127.0.0.1:${agentPort}`
    prometheus = `http://127.0.0.1:${prometheusPort}`

    const exporter = track('comet export', f.node.spawn(['export', '--listen', `127.0.0.1:${exporterPort}`]))
    const agent = track('comet watch', f.node.spawn(['watch', '--interval', '2', '--no-fanotify', '--metrics-listen', `127.0.0.1:${agentPort}`]))
    await waitFor('comet export to serve', () => exporter.log().includes('serving fleet metrics'), 30_000)
    await waitFor('comet watch to watch', () => agent.log().includes('watching'), 30_000)

    // The committed config, with the test's targets, a 1 s scrape and evaluation interval, and the rules by absolute path.
    const config = parse(readFileSync(PROMETHEUS_CONFIG, 'utf8'))
    config.global = {...config.global, scrape_interval: '1s', evaluation_interval: '1s'}
    config.rule_files = [RULES]
    const targets: Record<string, string> = {'comet-export': `127.0.0.1:${exporterPort}`, 'comet-agent': `127.0.0.1:${agentPort}`}
    for (const job of config.scrape_configs) {
      assert.ok(targets[job.job_name], `unexpected job ${job.job_name} in ${PROMETHEUS_CONFIG}`)
      job.scrape_interval = '1s'
      job.scrape_timeout = '1s'
      job.static_configs = [{targets: [targets[job.job_name]]}]
    }
    const directory = join(f.node.root, 'prometheus')
    mkdirSync(join(directory, 'data'), {recursive: true})
    writeFileSync(join(directory, 'prometheus.yml'), stringify(config))
    track(
      'prometheus',
      spawn(
        prometheusBinary('prometheus'),
        [`--config.file=${join(directory, 'prometheus.yml')}`, `--storage.tsdb.path=${join(directory, 'data')}`, `--web.listen-address=127.0.0.1:${prometheusPort}`, '--log.level=warn'],
        {stdio: ['ignore', 'pipe', 'pipe']},
      ),
    )
    await eventually('Prometheus to be ready', async () => ((await fetch(`${prometheus}/-/ready`)).ok ? true : undefined))
    await eventually('both targets to be scraped and up', async () => {
      const data = await api<{activeTargets: Array<{labels: {job: string}; health: string}>}>('/api/v1/targets')
      const up = data.activeTargets.filter((target) => target.health === 'up').map((target) => target.labels.job)
      return up.includes('comet-export') && up.includes('comet-agent') ? true : undefined
    })

    // Ransomware touches a sentinel: the agent fences, its next check counts the sentinel tampered.
    appendFileSync(f.planted[0], 'encrypted')
    await waitFor('the fencing procedure to run', () => f.fenceRuns().length > 0, 30_000)
    await eventually('Prometheus to see the node fenced, with a tampered sentinel', async () => {
      const fenced = await query(`comet_node_state{node="${NODE}", state="fenced"} == 1`)
      const tampered = await query(`comet_sentinels_tampered{node="${NODE}"} > 0`)
      const latency = await query(`comet_agent_detection_to_fence_seconds_count{node="${NODE}"}`)
      return fenced.length && tampered.length && latency.length ? true : undefined
    })
    // Two more scrapes of each target at least, so that rate() over the new series has two samples.
    await new Promise((resolve) => setTimeout(resolve, 3_000))
  })

  it('every panel query of the committed dashboard evaluates and returns at least one series', async () => {
    const queries = panelQueries()
    assert.ok(queries.length >= 10, `only ${queries.length} panel queries`)
    for (const panel of queries) {
      const expr = substituteVariables(panel.expr, VARIABLES)
      const result = await query(expr)
      assert.ok(result.length > 0, `panel "${panel.panel}" query ${panel.refId} returned no series: ${expr}`)
    }
  })

  it('the panels show what happened: one node fenced, its incident, its procedure started once, its latency', async () => {
    const panel = async (title: string, refId = 'A') => {
      const found = panelQueries().find((entry) => entry.panel === title && entry.refId === refId)
      assert.ok(found, `no query ${refId} in panel "${title}"`)
      return query(substituteVariables(found.expr, VARIABLES))
    }
    const byState = Object.fromEntries((await panel('Nodes by state')).map((sample) => [sample.metric.state, Number(sample.value[1])]))
    assert.deepEqual(byState, {ok: 0, tampered: 0, fencing: 0, fenced: 1, error: 0})
    assert.deepEqual((await panel('Node state')).map((sample) => [sample.metric.node, sample.value[1]]), [[NODE, '3']], 'the state timeline codes fenced as 3')
    const incidents = await panel('Incident timeline')
    assert.equal(incidents.length, 1)
    assert.ok(Number(incidents[0].value[1]) > 0, 'the incident is on the timeline')
    assert.deepEqual((await panel('Fencing started per procedure')).map((sample) => [sample.metric.procedure, sample.value[1]]), [['record', '1']])
    for (const refId of ['A', 'B', 'C']) {
      const [latency] = await panel('Detection to fence latency', refId)
      assert.equal(latency.metric.procedure, 'record')
      const seconds = Number(latency.value[1])
      assert.ok(Number.isFinite(seconds) && seconds > 0 && seconds <= 0.1, `detection to fence ${refId}: ${latency.value[1]} s`)
    }
    const [age] = await panel('Heartbeat age per node')
    assert.ok(Number(age.value[1]) < 180, `heartbeat age ${age.value[1]} s`)
    assert.deepEqual((await panel('Sentinels per node', 'C')).map((sample) => sample.value[1]), ['1'], 'one sentinel tampered')
  })

  it('the node variable lists the node, and the incident annotation query evaluates', async () => {
    const board = dashboard()
    const variable = board.templating.list.find((entry) => entry.name === 'node')
    const match = /^label_values\((\w+),\s*(\w+)\)$/.exec(variable?.definition ?? '')
    assert.ok(match, `node variable: ${variable?.definition}`)
    const values = await api<string[]>(`/api/v1/label/${match[2]}/values?match[]=${encodeURIComponent(match[1])}`)
    assert.deepEqual(values, [NODE])
    for (const annotation of board.annotations.list) if (annotation.expr) await query(substituteVariables(annotation.expr, VARIABLES))
  })

  it('every alert expression evaluates; the fenced and tampered alerts return the fenced node', async () => {
    const results = new Map<string, Sample[]>()
    for (const rule of alertRules()) results.set(rule.alert, [...(results.get(rule.alert) ?? []), ...(await query(rule.expr))])
    assert.deepEqual(results.get('CometNodeFenced')?.map((sample) => sample.metric.node), [NODE])
    assert.deepEqual(results.get('CometNodeTampered')?.map((sample) => sample.metric.node), [NODE])
    assert.deepEqual(results.get('CometAgentSilent'), [], 'the agent reports every 2 s: it is not silent')
    assert.deepEqual(results.get('CometStoreDown'), [])
  })

  it('Prometheus itself evaluates the rules without error and fires exactly the fenced and tampered alerts for the node', async () => {
    const firing = await eventually('the fenced and tampered alerts to fire', async () => {
      const data = await api<{groups: Array<{rules: Array<{name: string; health: string; lastError?: string; lastEvaluation: string; alerts?: Array<{state: string; labels: Record<string, string>}>}>}>}>('/api/v1/rules?type=alert')
      const rules = data.groups.flatMap((group) => group.rules)
      if (rules.some((rule) => rule.lastEvaluation.startsWith('0001'))) return undefined
      for (const rule of rules) assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError}`)
      const alerts = rules.flatMap((rule) => (rule.alerts ?? []).filter((alert) => alert.state === 'firing').map((alert) => `${alert.labels.alertname} ${alert.labels.node} ${alert.labels.severity}`))
      return alerts.length >= 2 ? alerts.sort() : undefined
    })
    assert.deepEqual(firing, [`CometNodeFenced ${NODE} critical`, `CometNodeTampered ${NODE} critical`])
  })

  it('every metric name that the dashboard or the rules use exists in Prometheus', async () => {
    const known = new Set(await api<string[]>('/api/v1/label/__name__/values'))
    const board = dashboard()
    const used = new Map<string, string>()
    for (const panel of panelQueries(board)) for (const name of metricNames(panel.expr)) used.set(name, `panel "${panel.panel}"`)
    for (const annotation of board.annotations.list) for (const name of metricNames(annotation.expr ?? '')) used.set(name, `annotation "${annotation.name}"`)
    for (const variable of board.templating.list) {
      const match = /label_values\((\w+)/.exec(variable.definition ?? '')
      if (match) used.set(match[1], `variable "${variable.name}"`)
    }
    for (const rule of alertRules()) for (const name of metricNames(rule.expr)) used.set(name, `alert ${rule.alert}`)
    assert.ok(used.size >= 15, [...used.keys()].join(', '))
    const missing = [...used].filter(([name]) => !known.has(name)).map(([name, where]) => `${name} (${where})`)
    assert.deepEqual(missing, [])
  })

  it('promtool check metrics accepts comet export\'s /metrics', async () => {
    const body = await (await fetch(`${exporterUrl}/metrics`)).text()
    assert.match(body, /comet_node_state\{node="web01",state="fenced"\} 1/)
    const result = promtool(['check', 'metrics'], {input: body})
    assert.equal(result.status, 0, result.output)
    assert.equal(result.output.trim(), '')
  })

  it('promtool check metrics passes on the agent\'s /metrics', async () => {
    const body = await (await fetch(`${agentUrl}/metrics`)).text()
    assert.match(body, /comet_agent_detections_total\{procedure="record",node="web01"\} 1/)
    assert.match(body, /^process_resident_memory_bytes\{node="web01"\} \d+/m)
    const result = promtool(['check', 'metrics'], {input: body})
    assert.equal(result.status, 0, result.output)
    assert.equal(result.output.trim(), '')
  })
})
