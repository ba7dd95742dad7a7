-- wrk script for bench.ts: assigns or completes user tasks over HTTP, one Idempotency-Key per
-- request, and writes what it saw to a file that bench.ts reads.
--
-- Settings come from the environment, not from wrk's `-- args`: the main Lua state (where `done`
-- runs) never sees those args, and the token stays out of the process list.
--   TRANCHE_BENCH_MODE        "assign" or "complete"
--   TRANCHE_BENCH_TOKEN       the organization's API key
--   TRANCHE_BENCH_INPUT       assign: lines "programId<TAB>userId", taken round robin;
--                             complete: lines "userTaskId<TAB>programId", each sent at most once
--   TRANCHE_BENCH_THREADS     wrk's -t, so that each thread knows its share of the input
--   TRANCHE_BENCH_KEY_PREFIX  makes every Idempotency-Key of the run unique
--   TRANCHE_BENCH_AMOUNT      assign: the milestone's value, in dollars
--   TRANCHE_BENCH_OUTPUT      where `done` writes its report
--
-- Tables handed from a thread to `done` hold strings only: wrk 4.1 crashes copying nested tables.
--
-- Every request is remembered as pending until a 2xx answer names it (assign: the milestone's
-- `name` is its key; complete: the user task's `id`). Whatever is still pending at the end (a
-- non-2xx answer, or no answer because wrk stopped or timed out) is written out with its key and
-- body, and bench.ts sends it again with the same key: the server answers from its idempotency
-- record or does the work once, so the bench learns every outcome and can check the books exactly.

local mode = os.getenv("TRANCHE_BENCH_MODE")
local token = os.getenv("TRANCHE_BENCH_TOKEN")
local inputPath = os.getenv("TRANCHE_BENCH_INPUT")
local threadCount = tonumber(os.getenv("TRANCHE_BENCH_THREADS"))
local keyPrefix = os.getenv("TRANCHE_BENCH_KEY_PREFIX")
local amount = os.getenv("TRANCHE_BENCH_AMOUNT")
local outputPath = os.getenv("TRANCHE_BENCH_OUTPUT")

-- Percentiles written for bench.ts, in percent: fine enough to merge two runs' distributions
-- (the two-process phase) and read p50 and p99 from the merge. Each costs wrk one pass over its
-- histogram, so the count is bounded.
local percentileStepPercent = 0.25

-- wrk's own duration is always its -d, even when every thread ran out of input and stopped early
-- (the main thread sleeps for -d, then joins them), so each thread notes when it sent its first
-- request and read its last answer, on the monotonic clock, in microseconds.
local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } tranche_bench_timespec;
int clock_gettime(int clock, tranche_bench_timespec *time);
]])
local clockMonotonic = 1
local timespec = ffi.new("tranche_bench_timespec")
local function nowUs()
  ffi.C.clock_gettime(clockMonotonic, timespec)
  return tonumber(timespec.tv_sec) * 1e6 + tonumber(timespec.tv_nsec) / 1e3
end

-- ---------------------------------------------------------------------------------------------
-- Main state: one `setup` per thread, one `done` at the end.

local threads = {}

function setup(thread)
  thread:set("threadIndex", #threads)
  table.insert(threads, thread)
end

-- ---------------------------------------------------------------------------------------------
-- Thread state.

-- A pending request, written as "programId<TAB>method<TAB>path<TAB>key<TAB>body".

local function split(line)
  local first, second = line:match("^([^\t]+)\t([^\t]+)$")
  return first, second
end

function init(args)
  work = {}
  local lineNumber = 0
  for line in io.lines(inputPath) do
    local first, second = split(line)
    if first ~= nil then
      -- Assignments may repeat, so every thread takes them all, starting at its own offset.
      -- Completions may not: thread i takes lines i, i + threads, i + 2 × threads, …
      if mode == "assign" or lineNumber % threadCount == threadIndex then
        table.insert(work, { first, second })
      end
      lineNumber = lineNumber + 1
    end
  end
  cursor = mode == "assign" and threadIndex or 0
  sequence = 0
  succeeded = {}
  pending = {}
  statuses = {}
  unexpected = 0
  headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
end

local function stopRequest()
  -- wrk must send something; this answers cheaply and the thread stops before it counts.
  wrk.thread:stop()
  return wrk.format("GET", "/healthz", { ["Authorization"] = headers["Authorization"] })
end

function request()
  firstSentUs = firstSentUs or nowUs()
  if #work == 0 then
    return stopRequest()
  end
  if mode == "assign" then
    local item = work[(cursor % #work) + 1]
    cursor = cursor + 1
    sequence = sequence + 1
    local key = keyPrefix .. "-" .. threadIndex .. "-" .. sequence
    local body = string.format(
      '{"programId":"%s","userId":"%s","monetaryValue":%s,"name":"%s"}',
      item[1],
      item[2],
      amount,
      key
    )
    pending[key] = table.concat({ item[1], "POST", "/v1/usertasks", key, body }, "\t")
    headers["Idempotency-Key"] = key
    return wrk.format("POST", "/v1/usertasks", headers, body)
  end
  cursor = cursor + 1
  local item = work[cursor]
  if item == nil then
    return stopRequest()
  end
  local key = keyPrefix .. "-" .. item[1]
  local path = "/v1/usertasks/" .. item[1] .. "/complete"
  pending[item[1]] = table.concat({ item[2], "PUT", path, key, "{}" }, "\t")
  headers["Idempotency-Key"] = key
  return wrk.format("PUT", path, headers, "{}")
end

function response(status, responseHeaders, body)
  lastAnsweredUs = nowUs()
  if status < 200 or status > 299 then
    statuses[status] = (statuses[status] or 0) + 1
    return
  end
  local id = body:match('"id":"([^"]+)"')
  local programId = body:match('"programId":"([^"]+)"')
  local name = mode == "assign" and body:match('"name":"([^"]+)"') or id
  if id == nil or programId == nil or name == nil or pending[name] == nil then
    unexpected = unexpected + 1
    return
  end
  pending[name] = nil
  table.insert(succeeded, id .. "\t" .. programId)
end

-- ---------------------------------------------------------------------------------------------
-- Main state again.

function done(summary, latency, requests)
  local out = assert(io.open(outputPath, "w"))
  local errors = summary.errors
  out:write("duration_us\t", summary.duration, "\n")
  out:write("responses\t", summary.requests, "\n")
  out:write("socket_errors\t", errors.connect + errors.read + errors.write + errors.timeout, "\n")
  local percent = percentileStepPercent
  while percent <= 100 do
    out:write("latency_us\t", percent, "\t", latency:percentile(percent), "\n")
    percent = percent + percentileStepPercent
  end
  local firstUs, lastUs = nil, nil
  for _, thread in ipairs(threads) do
    local first, last = thread:get("firstSentUs"), thread:get("lastAnsweredUs")
    if first ~= nil and (firstUs == nil or first < firstUs) then
      firstUs = first
    end
    if last ~= nil and (lastUs == nil or last > lastUs) then
      lastUs = last
    end
  end
  if firstUs ~= nil and lastUs ~= nil then
    out:write("active_us\t", string.format("%.0f", lastUs - firstUs), "\n")
  end
  for _, thread in ipairs(threads) do
    out:write("unexpected\t", thread:get("unexpected") or 0, "\n")
    for status, count in pairs(thread:get("statuses") or {}) do
      out:write("status\t", status, "\t", count, "\n")
    end
    for _, line in ipairs(thread:get("succeeded") or {}) do
      out:write("succeeded\t", line, "\n")
    end
    for _, request in pairs(thread:get("pending") or {}) do
      out:write("pending\t", request, "\n")
    end
  end
  out:close()
end
