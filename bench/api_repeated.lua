-- wrk script: POST /v1/screen with the same message every time (cache hits after the first).
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
  wrk.body = '{"text":"【示例商城】双十一大促，全场5折起，回T退订","kind":"marketing"}'
end
