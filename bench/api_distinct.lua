-- wrk script: POST /v1/screen with a distinct message on every request (every one is a cache miss).
-- KEY comes from the environment (wrk's Lua has os.getenv).
local counter = 0
local tid = 0
local threads = {}

function setup(thread)
  tid = tid + 1
  thread:set("tid", tid)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
  run = os.getenv("RUN") or tostring(os.time())
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"text":"【示例商城】尊敬的会员%s-%d-%d，您的订单已发货，单号SF%d，请注意查收。","kind":"notification"}',
    run, tid, counter, counter)
  return wrk.format(nil, nil, nil, body)
end
