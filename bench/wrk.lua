-- The requests of `make bench`'s scenarios for wrk (bench/scenarios.py names a scenario and
-- its data after `--`; products are ids first_id .. first_id + count - 1).
--
--   list <path>                        GET a fixed path (product list pages)
--   revalidate <path> <etag>           GET with If-None-Match: <etag> (expects 304s)
--   detail <first_id> <count>          GET a random product
--   history <tokens_file> <path>       GET with a bearer token, rotated across customers
--   order <tokens_file> <lines> <first_id> <count>
--                                      POST an order of <lines> distinct random products, with
--                                      an Idempotency-Key unique to the run, thread and request
--
-- run.py adds one last argument, unique to each wrk run (the keys start with it).
--   login <users_file> <password>      POST /api/token/, rotating usernames
--
-- Every thread counts answers by status class; done() prints one JSON line that run.py reads.

local threads = {}
local scenario, args_ = nil, {}
local tokens, users = {}, {}
local counter = 0
by_class = { ["2"] = 0, ["3"] = 0, ["4"] = 0, ["5"] = 0 }

local function read_lines(path)
  local out = {}
  for line in io.lines(path) do
    if #line > 0 then out[#out + 1] = line end
  end
  return out
end

function setup(thread)
  thread:set("id", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  scenario = args[1]
  args_ = args
  math.randomseed(os.time() + (id or 0) * 7919)
  if scenario == "history" or scenario == "order" then
    tokens = read_lines(args[2])
  elseif scenario == "login" then
    users = read_lines(args[2])
  end
  counter = (id or 1) * 13
  wrk.headers["Accept"] = "application/json"
end

local function next_token()
  counter = counter + 1
  return tokens[(counter % #tokens) + 1]
end

local function distinct_ids(n, first_id, count)
  -- n distinct products spread over the catalogue: a random first one, then every
  -- (count / n)th after it. The same choice as the pgbench scripts (bench/ceilings.py), so both
  -- meet the same row-lock contention.
  local step = math.floor(count / n)
  local first = first_id + math.random(0, step - 1)
  local picked = {}
  for k = 0, n - 1 do
    picked[#picked + 1] = first + k * step
  end
  return picked
end

function request()
  if scenario == "list" then
    return wrk.format("GET", args_[2])
  elseif scenario == "revalidate" then
    return wrk.format("GET", args_[2], { ["If-None-Match"] = args_[3] })
  elseif scenario == "detail" then
    local pid = math.random(tonumber(args_[2]), tonumber(args_[2]) + tonumber(args_[3]) - 1)
    return wrk.format("GET", "/api/v1/products/" .. pid .. "/")
  elseif scenario == "history" then
    return wrk.format("GET", args_[3], { ["Authorization"] = "Bearer " .. next_token() })
  elseif scenario == "order" then
    local ids = distinct_ids(tonumber(args_[3]), tonumber(args_[4]), tonumber(args_[5]))
    local parts = {}
    for k, pid in ipairs(ids) do
      parts[k] = '{"product_id":' .. pid .. ',"quantity":1}'
    end
    local body = '{"lines":[' .. table.concat(parts, ",") .. ']}'
    return wrk.format("POST", "/api/v1/orders/", {
      ["Authorization"] = "Bearer " .. next_token(),
      ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = args_[#args_] .. "-" .. (id or 0) .. "-" .. counter,
    }, body)
  elseif scenario == "login" then
    counter = counter + 1
    local username = users[(counter % #users) + 1]
    local body = '{"username":"' .. username .. '","password":"' .. args_[3] .. '"}'
    return wrk.format("POST", "/api/token/", { ["Content-Type"] = "application/json" }, body)
  end
  error("unknown scenario " .. tostring(scenario))
end

function response(status, headers, body)
  local class = tostring(status):sub(1, 1)
  by_class[class] = (by_class[class] or 0) + 1
end

function done(summary, latency, requests)
  local classes = { ["2"] = 0, ["3"] = 0, ["4"] = 0, ["5"] = 0 }
  for _, thread in ipairs(threads) do
    local counts = thread:get("by_class")
    for k, v in pairs(counts) do classes[k] = (classes[k] or 0) + v end
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,'
      .. '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,'
      .. '"s2xx":%d,"s3xx":%d,"s4xx":%d,"s5xx":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout,
    classes["2"], classes["3"], classes["4"], classes["5"]))
end
