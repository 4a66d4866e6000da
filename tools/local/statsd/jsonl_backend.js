/* A StatsD backend that appends each flush, as one JSON line, to config.jsonl.path:

     {"timestamp": <unix s>, "counters": {name: count}, "timers": {name: [ms, ...]},
      "gauges": {name: value}, "sets": {name: [member, ...]}}

   Only metrics that received data in that flush interval (the config's deleteIdleStats), without statsd's
   own statistics (names under prefixStats, "statsd."); a flush with nothing else writes no line. Read by
   tests/integration/test_airflow_statsd.py and by a person (`tail -f`, jq).
*/
"use strict";

const fs = require("fs");

function own(config, name) {
  const prefix = (config.prefixStats === undefined ? "statsd" : config.prefixStats) + ".";
  return name.startsWith(prefix);
}

function pick(config, metrics, convert) {
  const out = {};
  for (const name of Object.keys(metrics || {})) {
    if (!own(config, name)) {
      out[name] = convert ? convert(metrics[name]) : metrics[name];
    }
  }
  return out;
}

exports.init = function (startupTime, config, events, logger) {
  const path = (config.jsonl && config.jsonl.path) || "statsd-metrics.jsonl";
  let lastFlush = startupTime;
  let lastException = startupTime;

  events.on("flush", function (timestamp, metrics) {
    const line = {
      timestamp: timestamp,
      counters: pick(config, metrics.counters),
      timers: pick(config, metrics.timers),
      gauges: pick(config, metrics.gauges),
      sets: pick(config, metrics.sets, (set) => set.values()),
    };
    const empty = ["counters", "timers", "gauges", "sets"].every((kind) => Object.keys(line[kind]).length === 0);
    if (empty) {
      return;
    }
    try {
      fs.appendFileSync(path, JSON.stringify(line) + "\n");
      lastFlush = timestamp;
    } catch (err) {
      lastException = timestamp;
      logger.log("jsonl backend: cannot write " + path + ": " + err, "ERROR");
    }
  });

  events.on("status", function (write) {
    write(null, "jsonl", "lastFlush", lastFlush);
    write(null, "jsonl", "lastException", lastException);
  });
  return true;
};
