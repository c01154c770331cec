-- Runs one contract case's call: in the spec process (the libcurl
-- transport) or in an nginx content handler (the cosocket transport).
-- The outcome goes back as JSON text.
local run = {}

-- env: base_url, api_key, tls_url, ca_file, transport ("curl" or "ngx").
function run.case(file, index, env)
  local openai = require("openai")
  local case = require("spec.contract." .. file)[index]
  assert(case, ("no case %s[%d]"):format(file, index))
  local opts = { api_key = env.api_key, base_url = env.base_url, max_retries = 0, timeout = 5 }
  local extra = case.client
  if type(extra) == "function" then extra = extra(env) end
  for key, value in pairs(extra or {}) do opts[key] = value end
  if env.transport == "curl" then opts.transport = "curl" end
  local client = openai.new(opts)
  local ok, result = pcall(case.call, client, openai, env)
  client:close()
  if not ok then result = { raised = (tostring(result):gsub("^[^\n]-:%d+: ", "")) } end
  return openai.json.encode(result)
end

-- The nginx content handler: /contract?file=F&case=N&base_url=...
function run.serve()
  local args = ngx.req.get_uri_args()
  local env = {}
  for key, value in pairs(args) do env[key] = value end
  env.transport = "ngx"
  local ok, text = pcall(run.case, args.file, tonumber(args.case), env)
  if not ok then
    ngx.status = 500
    ngx.print(tostring(text))
    return
  end
  ngx.print(text)
end

return run
