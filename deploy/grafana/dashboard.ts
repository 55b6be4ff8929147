/**
 * The OORT Panel: the Safecomet fleet in Grafana, generated with the Grafana Foundation SDK.
 *
 *   npm run dashboard            writes dashboards/oort-panel.json (commit it)
 *   npm run dashboard -- --check  exits 1 when the committed JSON differs from what this file generates
 *
 * Fleet panels read `comet export` (job comet-export); latency, spool and agent panels read each agent's
 * `comet watch --metrics-listen` (job comet-agent). Every comet series carries node="<node>".
 */
import {readFileSync, writeFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

import * as common from '@grafana/grafana-foundation-sdk/common'
import type * as cog from '@grafana/grafana-foundation-sdk/cog'
import {
  AnnotationQueryBuilder,
  DashboardBuilder,
  DashboardCursorSync,
  DatasourceVariableBuilder,
  FieldColorBuilder,
  FieldColorModeId,
  MappingType,
  QueryVariableBuilder,
  RowBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
  VariableRefresh,
  VariableSort,
  type DynamicConfigValue,
  type ValueMapping,
} from '@grafana/grafana-foundation-sdk/dashboard'
import {DataqueryBuilder} from '@grafana/grafana-foundation-sdk/prometheus'
import {PanelBuilder as StatPanel} from '@grafana/grafana-foundation-sdk/stat'
import {PanelBuilder as StateTimelinePanel} from '@grafana/grafana-foundation-sdk/statetimeline'
import {PanelBuilder as TimeseriesPanel} from '@grafana/grafana-foundation-sdk/timeseries'
import {PanelBuilder as BarGaugePanel} from '@grafana/grafana-foundation-sdk/bargauge'

const OUTPUT = fileURLToPath(new URL('../dashboards/oort-panel.json', import.meta.url))

const datasource = {type: 'prometheus', uid: '${datasource}'}
/** The nodes picked in the dashboard's `node` variable ("All" is `.*`). */
const NODE = 'node=~"$node"'

function query(refId: string, expr: string, legend: string): cog.Builder<cog.Dataquery> {
  return new DataqueryBuilder().refId(refId).datasource(datasource).expr(expr).legendFormat(legend)
}

function color(fixedColor: string): DynamicConfigValue {
  return {id: 'color', value: {mode: 'fixed', fixedColor}}
}

function alarmFrom(value: number, color: string): DynamicConfigValue {
  return {id: 'thresholds', value: {mode: ThresholdsMode.Absolute, steps: [{value: null, color: 'green'}, {value, color}]}}
}

function thresholds(...steps: Array<[number | null, string]>): ThresholdsConfigBuilder {
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps(steps.map(([value, color]) => ({value, color})))
}

function valueMap(entries: Record<string, {text: string; color: string}>): ValueMapping[] {
  const options = Object.fromEntries(Object.entries(entries).map(([value, result], index) => [value, {...result, index}]))
  return [{type: MappingType.ValueToText, options}]
}

const STATE_COLORS: Record<string, string> = {ok: 'green', tampered: 'red', fencing: 'dark-red', fenced: 'dark-red', error: 'orange', 'never reported': 'purple'}

/** One number per node for the state timeline: ok 0, tampered 1, fencing 2, fenced 3, error 4, never reported 5. */
const STATE_CODE = [
  `max by (node) (comet_node_state{${NODE}, state="tampered"}) * 1`,
  `max by (node) (comet_node_state{${NODE}, state="fencing"}) * 2`,
  `max by (node) (comet_node_state{${NODE}, state="fenced"}) * 3`,
  `max by (node) (comet_node_state{${NODE}, state="error"}) * 4`,
  `(max by (node) (comet_last_heartbeat_timestamp_seconds{${NODE}}) == bool 0) * 5`,
].join('\n+ ')

export function oortPanel(): DashboardBuilder {
  return (
    new DashboardBuilder('OORT Panel')
      .uid('comet-oort-panel')
      .description('Safecomet: the ransomware tripwire fleet. Node states, incidents, heartbeats, detection-to-fence latency, store health, sentinels and fencing.')
      .tags(['safecomet', 'comet', 'security'])
      .editable()
      .tooltip(DashboardCursorSync.Crosshair)
      .refresh('30s')
      .time({from: 'now-6h', to: 'now'})
      .timezone('browser')
      .withVariable(new DatasourceVariableBuilder('datasource').label('Data source').type('prometheus'))
      .withVariable(
        new QueryVariableBuilder('node')
          .label('Node')
          .datasource(datasource)
          .query({query: 'label_values(comet_sentinels, node)', refId: 'PrometheusVariableQueryEditor-VariableQuery'})
          .definition('label_values(comet_sentinels, node)')
          .refresh(VariableRefresh.OnTimeRangeChanged)
          .sort(VariableSort.AlphabeticalAsc)
          .multi(true)
          .includeAll(true)
          .allValue('.*')
          .current({text: 'All', value: '$__all'}),
      )
      .annotation(
        new AnnotationQueryBuilder()
          .name('Incidents')
          .datasource(datasource)
          .enable(true)
          .iconColor('red')
          .expr(`changes(comet_last_incident_timestamp_seconds{${NODE}}[$__interval]) > 0`)
          .step('30s')
          .titleFormat('Incident on {{node}}')
          .textFormat('A sentinel of {{node}} tripped: see comet-status/{{node}}'),
      )

      .withRow(new RowBuilder('Fleet'))
      .withPanel(
        new StatPanel()
          .title('Nodes by state')
          .description('How many nodes are in each state, as their agents last reported it (comet_node_state); "never reported": defined in the store, no heartbeat yet.')
          .span(10)
          .height(5)
          .withTarget(query('A', `sum by (state) (comet_node_state{${NODE}})`, '{{state}}'))
          .withTarget(query('B', `count(comet_last_heartbeat_timestamp_seconds{${NODE}} == 0) or vector(0)`, 'never reported'))
          .textMode(common.BigValueTextMode.ValueAndName)
          .colorMode(common.BigValueColorMode.Background)
          .graphMode(common.BigValueGraphMode.None)
          .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
          // Green while nobody is in a state; the state's colour as soon as one node is.
          .colorScheme(new FieldColorBuilder().mode(FieldColorModeId.Thresholds))
          .thresholds(thresholds([null, 'green']))
          .overrideByName('tampered', [alarmFrom(1, STATE_COLORS.tampered)])
          .overrideByName('fencing', [alarmFrom(1, STATE_COLORS.fencing)])
          .overrideByName('fenced', [alarmFrom(1, STATE_COLORS.fenced)])
          .overrideByName('error', [alarmFrom(1, STATE_COLORS.error)])
          .overrideByName('never reported', [alarmFrom(1, STATE_COLORS['never reported'])]),
      )
      .withPanel(
        new StateTimelinePanel()
          .title('Node state')
          .description('Each node\'s state over time: ok, tampered, fencing, fenced (until comet reset), error, or never reported.')
          .span(14)
          .height(5)
          .withTarget(query('A', STATE_CODE, '{{node}}'))
          .mappings(
            valueMap({
              '0': {text: 'ok', color: STATE_COLORS.ok},
              '1': {text: 'tampered', color: STATE_COLORS.tampered},
              '2': {text: 'fencing', color: STATE_COLORS.fencing},
              '3': {text: 'fenced', color: STATE_COLORS.fenced},
              '4': {text: 'error', color: STATE_COLORS.error},
              '5': {text: 'never reported', color: STATE_COLORS['never reported']},
            }),
          )
          .showValue(common.VisibilityMode.Never)
          .mergeValues(true)
          .fillOpacity(80),
      )

      .withRow(new RowBuilder('Incidents and fencing'))
      .withPanel(
        new TimeseriesPanel()
          .title('Incident timeline')
          .description('Incidents recorded by each node (comet_incidents_total), per interval.')
          .span(12)
          .height(8)
          .withTarget(query('A', `sum by (node) (increase(comet_incidents_total{${NODE}}[$__rate_interval]))`, '{{node}}'))
          .drawStyle(common.GraphDrawStyle.Bars)
          .fillOpacity(80)
          .decimals(0)
          .min(0)
          .unit('short')
          .colorScheme(new FieldColorBuilder().mode(FieldColorModeId.PaletteClassic))
          .stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal)),
      )
      .withPanel(
        new BarGaugePanel()
          .title('Fencing started per procedure')
          .description('How many times each fencing procedure was started, across the selected nodes (comet_fencing_started_total).')
          .span(12)
          .height(8)
          .withTarget(query('A', `sum by (procedure) (comet_fencing_started_total{${NODE}})`, '{{procedure}}'))
          .orientation(common.VizOrientation.Horizontal)
          .displayMode(common.BarGaugeDisplayMode.Basic)
          .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
          .decimals(0)
          .min(0)
          .unit('short')
          .colorScheme(new FieldColorBuilder().mode(FieldColorModeId.Fixed).fixedColor('dark-red')),
      )
      .withPanel(
        new TimeseriesPanel()
          .title('Detection to fence latency')
          .description(
            'From the inotify event to the fencing procedure handed to the launcher, per procedure (comet_agent_detection_to_fence_seconds, from the agents), ' +
              'over every detection since each agent started: detections are rare, and the first one of a procedure creates its series, which rate() over a window cannot see.',
          )
          .span(24)
          .height(8)
          .withTarget(query('A', `histogram_quantile(0.5, sum by (le, procedure) (comet_agent_detection_to_fence_seconds_bucket{${NODE}}))`, 'p50 {{procedure}}'))
          .withTarget(query('B', `histogram_quantile(0.99, sum by (le, procedure) (comet_agent_detection_to_fence_seconds_bucket{${NODE}}))`, 'p99 {{procedure}}'))
          .withTarget(
            query(
              'C',
              `sum by (procedure) (comet_agent_detection_to_fence_seconds_sum{${NODE}}) / sum by (procedure) (comet_agent_detection_to_fence_seconds_count{${NODE}})`,
              'mean {{procedure}}',
            ),
          )
          .unit('s')
          .min(0)
          .showPoints(common.VisibilityMode.Always)
          .thresholds(thresholds([null, 'green'], [0.003, 'yellow'], [0.01, 'red']))
          .thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Dashed)),
      )

      .withRow(new RowBuilder('Agents and store'))
      .withPanel(
        new TimeseriesPanel()
          .title('Heartbeat age per node')
          .description('Seconds since each node\'s agent last reported to the store. The CometAgentSilent alert fires past three 60 s heartbeats (180 s). Nodes that never reported are in "Node state".')
          .span(12)
          .height(8)
          .withTarget(query('A', `time() - (comet_last_heartbeat_timestamp_seconds{${NODE}} > 0)`, '{{node}}'))
          .unit('s')
          .min(0)
          .thresholds(thresholds([null, 'green'], [120, 'yellow'], [180, 'red']))
          .thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.LineAndArea))
          .legend(new common.VizLegendOptionsBuilder().displayMode(common.LegendDisplayMode.Table).placement(common.LegendPlacement.Right).calcs(['lastNotNull', 'max']).showLegend(true)),
      )
      .withPanel(
        new StateTimelinePanel()
          .title('Store health')
          .description('Whether the exporter could read the store at its last scrape (comet_store_up), and whether each agent\'s last report reached it (comet_agent_store_up).')
          .span(12)
          .height(8)
          .withTarget(query('A', 'min by (instance) (comet_store_up)', 'exporter {{instance}}'))
          .withTarget(query('B', `max by (node) (comet_agent_store_up{${NODE}})`, 'agent {{node}}'))
          .mappings(valueMap({'0': {text: 'down', color: 'red'}, '1': {text: 'up', color: 'green'}}))
          .showValue(common.VisibilityMode.Never)
          .mergeValues(true)
          .fillOpacity(80),
      )
      .withPanel(
        new TimeseriesPanel()
          .title('Reports waiting in agent spools')
          .description('Reports spooled on each node and not yet in the store (comet_agent_spool_reports). Growing: the store does not take them.')
          .span(8)
          .height(7)
          .withTarget(query('A', `max by (node) (comet_agent_spool_reports{${NODE}})`, '{{node}}'))
          .decimals(0)
          .min(0)
          .unit('short'),
      )
      .withPanel(
        new TimeseriesPanel()
          .title('Store read time per scrape')
          .description('Time the exporter took to read the whole fleet from the store at each scrape (comet_scrape_duration_seconds).')
          .span(8)
          .height(7)
          .withTarget(query('A', 'max by (instance) (comet_scrape_duration_seconds)', '{{instance}}'))
          .unit('s')
          .min(0),
      )
      .withPanel(
        new TimeseriesPanel()
          .title('Agent memory')
          .description('Resident memory of each comet agent (process_resident_memory_bytes of the comet-agent targets).')
          .span(8)
          .height(7)
          .withTarget(query('A', `max by (node) (process_resident_memory_bytes and on (job, instance) comet_agent_checks_total{${NODE}})`, '{{node}}'))
          .unit('bytes')
          .min(0),
      )

      .withRow(new RowBuilder('Sentinels'))
      .withPanel(
        new TimeseriesPanel()
          .title('Sentinels per node')
          .description('Sentinels defined in the store for each node (comet_sentinels), and found intact or tampered at its last full check.')
          .span(24)
          .height(8)
          .withTarget(query('A', `comet_sentinels{${NODE}}`, '{{node}} defined'))
          .withTarget(query('B', `comet_sentinels_intact{${NODE}}`, '{{node}} intact'))
          .withTarget(query('C', `comet_sentinels_tampered{${NODE}}`, '{{node}} tampered'))
          .decimals(0)
          .min(0)
          .unit('short')
          .overrideByRegexp('.* tampered$', [color('red')])
          .legend(new common.VizLegendOptionsBuilder().displayMode(common.LegendDisplayMode.Table).placement(common.LegendPlacement.Right).calcs(['lastNotNull', 'min']).showLegend(true)),
      )
  )
}

function render(): string {
  return JSON.stringify(oortPanel().build(), null, 2) + '\n'
}

const json = render()
if (process.argv.includes('--check')) {
  let committed = ''
  try {
    committed = readFileSync(OUTPUT, 'utf8')
  } catch {}
  if (committed !== json) {
    process.stderr.write(`${OUTPUT} is not what deploy/grafana/dashboard.ts generates: run npm run dashboard and commit the result\n`)
    process.exit(1)
  }
  process.stdout.write(`${OUTPUT} is up to date\n`)
} else {
  writeFileSync(OUTPUT, json)
  process.stdout.write(`wrote ${OUTPUT}\n`)
}
