-- wrk script for the serving benchmark: POST a 100-candidate ranking request, a new
-- requisition id each time (so A/B assignment sees many requisitions).
-- env: HRLOOP_BENCH_BODY (file with the JSON, "REQ-ID" marks the requisition id), HRLOOP_BENCH_TOKEN
local prefix, suffix
init = function(args)
  local f = assert(io.open(os.getenv("HRLOOP_BENCH_BODY"), "r"))
  local body = f:read("*a")
  f:close()
  local s, e = string.find(body, "REQ-ID", 1, true)
  prefix, suffix = string.sub(body, 1, s - 1), string.sub(body, e + 1)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("HRLOOP_BENCH_TOKEN")
end
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, prefix .. "REQ-" .. math.random(1, 1000000000) .. "-" .. counter .. suffix)
end
