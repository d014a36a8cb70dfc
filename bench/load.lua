-- wrk script for bench/click_load.py: one request shape a run, given after `--`:
--
--   wrk -t1 -c200 -d10s --timeout 30s -s bench/load.lua http://127.0.0.1:PORT/PATH -- METHOD COOKIE CSRF REFERER [SPREAD_MS]
--
-- METHOD is GET or POST; COOKIE the browser's Cookie header (sessionid and csrftoken); CSRF the
-- csrftoken, sent as X-CSRFToken on a POST (Django's header form of the form field); REFERER
-- what a browser sends from the library page. SPREAD_MS (optional): each request waits a random
-- 0..SPREAD_MS ms first, so that clients whose requests all take as long (a hanging Descript) do
-- not stay in step and arrive in bursts. Redirects are not followed (wrk never does).
-- Every request sent and every answer by status is counted over all threads, and one line
-- "BENCH_RESULT {json}" is printed at the end for click_load.py (latencies in microseconds).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local method, cookie, csrf, referer = args[1], args[2], args[3], args[4]
  wrk.method = method
  wrk.headers["Cookie"] = cookie
  wrk.headers["Referer"] = referer
  wrk.headers["User-Agent"] = "bench-click-load (wrk)"
  if method == "POST" then
    wrk.headers["X-CSRFToken"] = csrf
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
    wrk.body = ""
  end
  req = wrk.format()
  issued = 0
  statuses = {}
  local spread = tonumber(args[5] or "0") or 0
  if spread > 0 then
    math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
    delay = function() return math.random(0, spread) end  -- wrk looks for delay() after init()
  end
end

function request()
  issued = issued + 1
  return req
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local issued_total = 0
  local by_status = {}
  for _, t in ipairs(threads) do
    issued_total = issued_total + t:get("issued")
    for status, n in pairs(t:get("statuses")) do
      by_status[status] = (by_status[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(by_status) do
    table.insert(parts, string.format('"%d": %d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"issued": %d, "answered": %d, "duration_us": %d, "statuses": {%s}, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
    '"p50_us": %d, "p90_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    issued_total, summary.requests, summary.duration, table.concat(parts, ", "),
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
