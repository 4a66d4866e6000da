/* StatsD (Etsy's statsd 0.9.0) for make airflow STATSD=1: evaluated by statsd as a JavaScript object.

   Listens for metrics on UDP 127.0.0.1:8125 and serves its management console (TCP, commands `health`,
   `counters`, `timers`, `gauges`) on 127.0.0.1:8126: loopback only. tools/local/airflow_stack.py starts it with
   STATSD_PORT / STATSD_MGMT_PORT (other ports), STATSD_FLUSH_INTERVAL_MS (how often the metrics received
   are aggregated and handed to the backend) and STATSD_METRICS_FILE (where the backend writes them) in
   its environment.
*/
{
  address: "127.0.0.1",
  port: Number(process.env.STATSD_PORT || 8125),
  mgmt_address: "127.0.0.1",
  mgmt_port: Number(process.env.STATSD_MGMT_PORT || 8126),
  flushInterval: Number(process.env.STATSD_FLUSH_INTERVAL_MS || 10000),
  // Each flush carries only what arrived since the one before (no zeros for metrics gone quiet).
  deleteIdleStats: true,
  // Required by statsd from its own folder: node_modules/statsd/../../jsonl_backend.js is the one next to
  // this file.
  backends: ["../../jsonl_backend"],
  jsonl: { path: process.env.STATSD_METRICS_FILE || "statsd-metrics.jsonl" },
  automaticConfigReload: false
}
