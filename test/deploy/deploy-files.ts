/** Shared by the test/deploy tests: where the deploy files are, the tools they need, the Prometheus binaries, and reading PromQL. */
import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {delimiter, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {parse} from 'yaml'

export const REPO = fileURLToPath(new URL('../../../', import.meta.url))

export interface ToolRun {
  status: number | null
  /** stdout and stderr together. */
  output: string
}

/** Runs a tool (ansible-playbook, ansible-lint) to its end, killed after `timeoutMs`. */
export function runTool(command: string, args: string[], options: {env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number} = {}): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {env: options.env ?? process.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe']})
    let output = ''
    child.stdout.on('data', (chunk) => (output += chunk))
    child.stderr.on('data', (chunk) => (output += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 300_000)
    child.on('error', reject)
    child.on('close', (status) => {
      clearTimeout(timer)
      resolve({status, output})
    })
  })
}

/** An ansible-playbook PLAY RECAP line, as numbers: ok, changed, failed... */
export function recap(output: string): Record<string, number> {
  const line = /PLAY RECAP[^\n]*\n[^\n]*?:\s*(.*)$/m.exec(output)?.[1] ?? ''
  return Object.fromEntries([...line.matchAll(/(\w+)=(\d+)/g)].map(([, key, value]) => [key, Number(value)]))
}

/** A missing tool fails the test with the Debian package that brings it. */
export function requireTool(name: string, debianPackage: string): void {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], {encoding: 'utf8'}).stdout.trim()
  if (!found) assert.fail(`${name} not found: install the Debian package ${debianPackage}`)
}
export const PROMETHEUS_DIR = join(REPO, 'deploy', 'prometheus')
export const PROMETHEUS_CONFIG = join(PROMETHEUS_DIR, 'prometheus.yml')
export const RULES = join(PROMETHEUS_DIR, 'rules', 'comet.rules.yml')
export const RULES_TEST = join(PROMETHEUS_DIR, 'tests', 'comet.rules.test.yml')
export const DASHBOARD = join(REPO, 'deploy', 'grafana', 'dashboards', 'oort-panel.json')

/** /usr/bin/prometheus or /usr/bin/promtool (Debian's package `prometheus` brings both), else wherever PATH has it. */
export function prometheusBinary(name: 'prometheus' | 'promtool'): string {
  const directories = ['/usr/bin', ...(process.env.PATH ?? '').split(delimiter).filter(Boolean)]
  const found = directories.map((directory) => join(directory, name)).find((candidate) => existsSync(candidate))
  if (!found) throw new Error(`${name} not found in /usr/bin or PATH: install it with \`apt-get install prometheus\` (Debian's package brings prometheus and promtool)`)
  return found
}

export interface ToolResult {
  status: number | null
  output: string
}

export function promtool(args: string[], options: {cwd?: string; input?: string} = {}): ToolResult {
  const result = spawnSync(prometheusBinary('promtool'), args, {cwd: options.cwd ?? REPO, input: options.input, encoding: 'utf8', timeout: 60_000})
  if (result.error) throw result.error
  return {status: result.status, output: `${result.stdout}${result.stderr}`}
}

export interface AlertRule {
  alert: string
  expr: string
  for?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
}

export function alertRules(): AlertRule[] {
  const file = parse(readFileSync(RULES, 'utf8')) as {groups: Array<{name: string; rules: AlertRule[]}>}
  return file.groups.flatMap((group) => group.rules).filter((rule) => rule.alert !== undefined)
}

export interface PanelQuery {
  panel: string
  refId: string
  expr: string
}

export interface Dashboard {
  title: string
  uid: string
  panels: Array<{type: string; title: string; gridPos: {x: number; y: number; w: number; h: number}; datasource?: {uid?: string}; targets?: Array<{refId: string; expr: string; datasource?: {type?: string; uid?: string}}>}>
  templating: {list: Array<{name: string; type: string; query?: unknown; definition?: string}>}
  annotations: {list: Array<{name: string; expr?: string}>}
}

export function dashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard
}

export function panelQueries(board: Dashboard = dashboard()): PanelQuery[] {
  return board.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({panel: panel.title, refId: target.refId, expr: target.expr})))
}

/** Grafana's variables, replaced by the concrete values a user would see for one node. */
export function substituteVariables(expr: string, values: {node: string; rateInterval: string; interval: string; range: string}): string {
  const replaced = expr
    .replaceAll('$__rate_interval', values.rateInterval)
    .replaceAll('$__interval', values.interval)
    .replaceAll('$__range', values.range)
    .replaceAll('${node}', values.node)
    .replaceAll('$node', values.node)
  if (replaced.includes('$')) throw new Error(`a Grafana variable is left in ${JSON.stringify(replaced)}: teach substituteVariables about it`)
  return replaced
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'inf', 'nan', 'offset'])

/** The metric names a PromQL expression selects (not its functions, labels, keywords or durations). */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+-?\w+/g, ' ')
  const names = new Set<string>()
  for (const match of stripped.matchAll(/(?<![\w.:$])[a-zA-Z_:][\w:]*/g)) {
    const rest = stripped.slice((match.index ?? 0) + match[0].length)
    if (/^\s*\(/.test(rest) || KEYWORDS.has(match[0].toLowerCase())) continue
    names.add(match[0])
  }
  return [...names]
}
