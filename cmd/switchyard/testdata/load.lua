-- load.lua is wrk's script for BenchmarkIngest: each request carries
-- `events` (the first argument) Segment track calls, each with a messageId
-- no other request of the run has, so deduplication stores every one. With
-- events 1 the body is one call, for the single-call routes. The second
-- argument is the Authorization header; the third names the run, so runs on
-- the same log do not share ids. done prints the summary as one JSON line.

local threads = {}
local next_thread = 1

function setup(thread)
  thread:set("thread", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

local event = '{"type":"track","userId":"user-%d-%d","event":"Order Completed","messageId":"%s-t%d-r%d-e%d","timestamp":"2026-11-22T19:01:32.346Z","properties":{"orderId":"o-%d","total":42.5,"currency":"EUR","products":[{"id":"p1","price":10},{"id":"p2","price":32.5}]},"context":{"library":{"name":"analytics-go","version":"3.0.0"}}}'

function init(args)
  events = tonumber(args[1])
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = args[2]
  run = args[3]
  n = 0
end

function request()
  n = n + 1
  if events == 1 then
    return wrk.format(nil, nil, nil, string.format(event, thread, n % 10, run, thread, n, 0, n))
  end
  local parts = {}
  for i = 1, events do
    parts[i] = string.format(event, thread, i % 10, run, thread, n, i, n)
  end
  return wrk.format(nil, nil, nil, '{"batch":[' .. table.concat(parts, ",") .. '],"sentAt":"2026-11-22T19:01:33.000Z"}')
end

function done(summary, latency, requests)
  io.write(string.format('{"requests":%d,"duration_us":%d,"bytes":%d,"non2xx":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
