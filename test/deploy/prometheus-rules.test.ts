import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {describe, it} from 'node:test'

import {parse} from 'yaml'

import {alertRules, metricNames, PROMETHEUS_CONFIG, PROMETHEUS_DIR, promtool, RULES, RULES_TEST} from './deploy-files.js'

interface RulesTestFile {
  rule_files: string[]
  tests: Array<{name: string; alert_rule_test?: Array<{alertname: string; eval_time: string; exp_alerts?: Array<{exp_labels: Record<string, string>}>}>}>
}

describe('the Prometheus alert rules (deploy/prometheus)', () => {
  it('promtool check rules accepts the rules file, lint included', () => {
    const result = promtool(['check', 'rules', RULES])
    assert.equal(result.status, 0, result.output)
    assert.match(result.output, new RegExp(`SUCCESS: ${alertRules().length} rules found`))
  })

  it('promtool test rules passes the unit tests', () => {
    const result = promtool(['test', 'rules', RULES_TEST], {cwd: PROMETHEUS_DIR})
    assert.equal(result.status, 0, result.output)
    assert.match(result.output, /SUCCESS/)
  })

  it('promtool check config accepts prometheus.yml and the rule files it names, from any working directory', () => {
    const result = promtool(['check', 'config', PROMETHEUS_CONFIG], {cwd: '/'})
    assert.equal(result.status, 0, result.output)
    assert.match(result.output, /SUCCESS: 1 rule files found/)
    assert.match(result.output, new RegExp(`SUCCESS: ${alertRules().length} rules found`))
    const config = parse(readFileSync(PROMETHEUS_CONFIG, 'utf8')) as {rule_files: string[]; scrape_configs: Array<{job_name: string}>}
    assert.deepEqual(config.rule_files, ['rules/comet.rules.yml'])
    assert.deepEqual(config.scrape_configs.map((job) => job.job_name).sort(), ['comet-agent', 'comet-export'])
  })

  it('every alert has a unit test where it fires and one where it does not', () => {
    const tests = parse(readFileSync(RULES_TEST, 'utf8')) as RulesTestFile
    assert.deepEqual(tests.rule_files, ['../rules/comet.rules.yml'])
    const cases = tests.tests.flatMap((test) => test.alert_rule_test ?? [])
    for (const name of new Set(alertRules().map((rule) => rule.alert))) {
      const mine = cases.filter((entry) => entry.alertname === name)
      assert.ok(mine.some((entry) => (entry.exp_alerts ?? []).length > 0), `${name} is never tested firing`)
      assert.ok(mine.some((entry) => (entry.exp_alerts ?? []).length === 0), `${name} is never tested not firing`)
    }
  })

  it('every alert has a severity, a summary and a description naming what it is about', () => {
    for (const rule of alertRules()) {
      assert.match(rule.alert, /^Comet[A-Z][A-Za-z]+$/, `${rule.alert}: alert names are CamelCase, prefixed with Comet`)
      assert.ok(['critical', 'warning'].includes(rule.labels?.severity ?? ''), `${rule.alert}: severity must be critical or warning`)
      assert.deepEqual(Object.keys(rule.labels ?? {}), ['severity'], `${rule.alert}: only severity is added; the rest comes from the series`)
      const {summary = '', description = ''} = rule.annotations ?? {}
      const about = metricNames(rule.expr).some((name) => name.startsWith('comet_') && !['comet_store_up', 'comet_scrape_duration_seconds', 'comet_nodes'].includes(name))
        ? '$labels.node'
        : '$labels.instance'
      assert.ok(summary.includes(about), `${rule.alert}: the summary must name ${about}`)
      assert.ok(description.includes(about), `${rule.alert}: the description must name ${about}`)
    }
  })
})
