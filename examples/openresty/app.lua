-- Content handlers that call the API from nginx without blocking it: the
-- client's calls go over cosockets, so the worker serves other requests
-- while they wait. One client per worker, made on first use.
--
--   location = /chat   { content_by_lua_block { require("app").chat() } }
--   location = /stream { content_by_lua_block { require("app").stream() } }
--
-- Both read the prompt from the query string: /chat?q=Hello
local openai = require("openai")

local app = {}

local client

local function get_client()
  if client == nil then
    -- OPENAI_API_KEY (and OPENAI_BASE_URL) come from the environment:
    -- nginx.conf must list them with `env`.
    client = openai.new { max_retries = 2, timeout = 60 }
  end
  return client
end

local function messages()
  local prompt = ngx.var.arg_q and ngx.unescape_uri(ngx.var.arg_q) or "Say hello."
  return { { role = "user", content = prompt } }
end

local function fail(status, err)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.print(openai.json.encode { error = { type = err.name, message = err.message } })
end

-- A plain call: the completion's text.
function app.chat()
  local completion, err = get_client().chat.completions.create {
    model = os.getenv("OPENAI_MODEL") or "gpt-4o-mini", messages = messages(),
  }
  if completion == nil then return fail(err.status or 502, err) end
  ngx.header["Content-Type"] = "text/plain; charset=utf-8"
  ngx.say(completion.choices[1].message.content)
end

-- A stream relayed to the browser as server-sent events, each delta sent
-- on as it arrives (ngx.flush(true) waits until nginx has written it).
function app.stream()
  local stream, err = get_client().chat.completions.create {
    model = os.getenv("OPENAI_MODEL") or "gpt-4o-mini", messages = messages(), stream = true,
  }
  if stream == nil then return fail(err.status or 502, err) end
  ngx.header["Content-Type"] = "text/event-stream"
  ngx.header["Cache-Control"] = "no-cache"
  ngx.header["X-Accel-Buffering"] = "no"
  while true do
    local chunk, failure = stream:next()
    if chunk == nil then
      if failure ~= nil then
        ngx.print("event: error\ndata: ", openai.json.encode { message = failure.message }, "\n\n")
      else
        ngx.print("data: [DONE]\n\n")
      end
      ngx.flush(true)
      return
    end
    local choice = chunk.choices[1]
    local text = choice and choice.delta and choice.delta.content
    if type(text) == "string" and text ~= "" then
      ngx.print("data: ", openai.json.encode { text = text }, "\n\n")
      local ok = ngx.flush(true)
      if not ok then return stream:close() end -- the browser went away
    end
  end
end

return app
