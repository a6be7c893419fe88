-- wrk 4 script for benchmarks/bench_http_load.py: POST /optimize, one body per request.
--
-- Configured by environment variables (set by the Python driver):
--   LOAD_RATE       total requests/s over all threads; 0 = as fast as the connections go
--   LOAD_SECONDS    how long requests are sent; wrk's own -d must be a little longer, so that
--                   the requests in flight finish and every 200 sent is counted (after the
--                   window each connection idles in delay())
--   LOAD_THREADS    wrk's -t (each thread paces rate / threads)
--   LOAD_CAMPAIGN   campaign id
--   LOAD_CUSTOMERS  customer pool size: ids <prefix>00000 ...; a request takes the next one of
--                   its thread (thread id + threads x counter), so concurrent requests never
--                   share a customer (the per-customer lock would serialize them)
--   LOAD_PREFIX     customer id prefix (ids are prefix .. %05d)
--   LOAD_OFFSET     first customer index (each run starts where the previous one ended)
--   LOAD_TOKEN      API key (service role)
--   LOAD_RUN        run tag, part of each request's idempotency key
--   LOAD_OUT        where done() writes its JSON
--
-- Pacing (LOAD_RATE > 0): each thread keeps a schedule of send times, one every
-- threads / rate seconds, and delay() makes a connection wait for the next free slot. A
-- connection still busy when its slot comes sends late, so this is open-loop only
-- approximately (coordinated omission): wrk's latency counts from the actual send. The
-- "from schedule" latency counts from the slot instead (what a caller sending at that time
-- would have waited), matched to its slot by the customer id the response echoes.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } load_timespec;
int clock_gettime(int clk_id, load_timespec *tp);
]])
local ts = ffi.new("load_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local rate = tonumber(os.getenv("LOAD_RATE") or "0")
local seconds = tonumber(os.getenv("LOAD_SECONDS") or "10")
local campaign = os.getenv("LOAD_CAMPAIGN") or "1"
local customers = tonumber(os.getenv("LOAD_CUSTOMERS") or "20000")
local prefix = os.getenv("LOAD_PREFIX") or "c"
local offset = tonumber(os.getenv("LOAD_OFFSET") or "0")
local token = os.getenv("LOAD_TOKEN") or ""
local run = os.getenv("LOAD_RUN") or "r"
local n_threads = tonumber(os.getenv("LOAD_THREADS") or "1")
local IDLE_MS = 3600 * 1000 -- after the window: never send again

-- main state: the threads, read back in done()
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

-- thread state
local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }
local t0 = nil
local claimed = 0 -- sends allowed by delay() (paced: slots handed out)
local issued = 0 -- requests built by request(): the n-th one takes the n-th slot
local interval = 1000.0 * n_threads / math.max(rate, 1e-9) -- ms between a thread's slots
local quota = math.floor(rate * seconds / n_threads)
local slot_of = {} -- customer index -> scheduled send time (ms), for the from-schedule latency
status_counts = {}
from_schedule_us = {}
errors_body = ""

-- Called before each request of a connection; the request is built when the wait is over.
-- Slots go out in order and timers fire in order, so the n-th request built is the n-th slot.
function delay()
  local now = now_ms()
  if t0 == nil then
    t0 = now
  end
  if now - t0 >= seconds * 1000 then
    return IDLE_MS -- the window is over (also when the server fell behind the schedule)
  end
  if rate > 0 then
    if claimed >= quota then
      return IDLE_MS
    end
    local wait = t0 + claimed * interval - now
    claimed = claimed + 1
    return math.max(0, math.floor(wait))
  end
  claimed = claimed + 1
  return 0
end

function request()
  local n = -1 -- wrk calls request() once per state before any delay(): a request never sent
  if claimed > issued then
    n = issued
    issued = issued + 1
  end
  local index = (offset + tid + n_threads * n) % customers
  if rate > 0 and n >= 0 then
    slot_of[index] = t0 + n * interval
  end
  local body = string.format(
    '{"campaign_id":%s,"customer_id":"%s%05d","idempotency_key":"%s-%d-%d"}',
    campaign, prefix, index, run, tid, n
  )
  return wrk.format("POST", "/optimize", headers, body)
end

function response(status, hdrs, body)
  status_counts[status] = (status_counts[status] or 0) + 1
  if status == 200 then
    if rate > 0 then
      local id = body:match('"customer_id":"' .. prefix .. '(%d+)"')
      local slot = id and slot_of[tonumber(id)]
      if slot then
        table.insert(from_schedule_us, math.floor((now_ms() - slot) * 1000))
      end
    end
  elseif #errors_body < 400 then
    errors_body = errors_body .. status .. ": " .. string.sub(body or "", 1, 200) .. "\n"
  end
end

local function json_string(s)
  return '"' .. s:gsub('\\', '\\\\'):gsub('"', '\\"'):gsub('\n', '\\n') .. '"'
end

function done(summary, latency, requests)
  local counts = {}
  local sched = {}
  local errs = ""
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("status_counts")) do
      counts[status] = (counts[status] or 0) + n
    end
    for _, v in ipairs(thread:get("from_schedule_us")) do
      table.insert(sched, v)
    end
    errs = errs .. thread:get("errors_body")
  end
  table.sort(sched)
  local function pct(values, p)
    if #values == 0 then
      return -1
    end
    return values[math.max(1, math.ceil(#values * p / 100))]
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  local e = summary.errors
  local out = string.format(
    '{"requests":%d,"duration_us":%d,"status":{%s},'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},'
      .. '"from_schedule_us":{"n":%d,"p50":%d,"p99":%d},"error_bodies":%s}',
    summary.requests, summary.duration, table.concat(parts, ","),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    #sched, pct(sched, 50), pct(sched, 99), json_string(errs)
  )
  local path = os.getenv("LOAD_OUT")
  if path then
    local f = assert(io.open(path, "w"))
    f:write(out)
    f:close()
  else
    io.write(out .. "\n")
  end
end
