-- Clients: configuration from options and the environment, headers, and the
-- one request pipeline (URL, body, retries, errors) every resource goes
-- through. The HTTP exchange itself is a transport's (openai.transport):
-- libcurl, or nginx's cosockets inside OpenResty.
local core = require("openai.core")
local compat = require("openai.compat")
local errors = require("openai.errors")
local object = require("openai.object")
local Stream = require("openai.stream")
local transport = require("openai.transport")
local url = require("openai.url")

local VERSION = "0.1.0"
local DEFAULT_BASE_URL = "https://api.openai.com/v1"
local DEFAULT_TIMEOUT = 600 -- seconds, per attempt
local DEFAULT_MAX_RETRIES = 2
local MAX_SERVER_DELAY = 60 -- seconds; longer retry-after values fall back to backoff

local M = { VERSION = VERSION, DEFAULT_BASE_URL = DEFAULT_BASE_URL }

-- Client state, the API key included, lives here and not in the client
-- table, so printing or walking a client never shows the key.
local states = setmetatable({}, { __mode = "k" })


---------------------------------------------------------------------------
-- Validation helpers: they return an error message, the caller raises it
-- at the user's call site.

local function env(name)
  local value = os.getenv(name)
  if value == nil then return nil end
  value = value:match("^%s*(.-)%s*$")
  if value == "" then return nil end
  return value
end

-- %q on one line: error messages stay one line whatever they quote.
local quote = compat.quote

-- A header name: an HTTP token, by the C core's rule (the one its
-- response-head parser applies).
local is_token = core.http_token

local function has_control(text)
  return text:find("[%z\r\n]") ~= nil
end

-- Headers libcurl sets from the request itself: a second Content-Length or
-- a Connection: close would desync a kept-alive connection. Refused with
-- any value, false included (removing them is no safer).
local FRAMING = {
  ["content-length"] = true, ["transfer-encoding"] = true, connection = true, host = true,
  expect = true, upgrade = true, te = true, trailer = true,
}

-- The one rule for every header layer; `where` says which.
local function check_header(name, value, where)
  if not is_token(name) then
    return ("%s: invalid header name %s"):format(where, quote(tostring(name)))
  end
  if FRAMING[name:lower()] then
    return ("%s: '%s' is set by the client and cannot be overridden"):format(where, name)
  end
  if value == false or value == core.null then return nil end
  if type(value) == "number" then value = tostring(value) end
  if type(value) ~= "string" then
    return ("%s: header '%s' must be a string or false"):format(where, name)
  end
  if has_control(value) then
    return ("%s: header '%s' contains CR, LF or NUL"):format(where, name)
  end
  return nil
end

local function check_timeout(value, what)
  if type(value) ~= "number" or value ~= value or value <= 0 then
    return ("%s must be a positive number of seconds"):format(what)
  end
end

local function check_retries(value, what)
  local count = compat.tointeger(value)
  if count == nil or count < 0 then
    return ("%s must be a non-negative integer"):format(what)
  end
end

---------------------------------------------------------------------------
-- Headers: an ordered set keyed by lower-case name, so later layers
-- override earlier ones whatever their case, and `false` removes.

-- set.lines[key] is the line to send, or false for a removed header.
local function header_set(set, name, value)
  local key = name:lower()
  if set.lines[key] == nil then set.order[#set.order + 1] = key end
  if value == false or value == core.null then
    set.lines[key] = false
  else
    -- Integers as digits: an integral number on runtimes without an
    -- integer subtype too (tostring would give 1e+15 for 10^15 there).
    if compat.is_integer(value) then value = ("%d"):format(value) end
    set.lines[key] = name .. ": " .. tostring(value)
  end
end

local function header_copy(set)
  local order, lines, from_order, from_lines = {}, {}, set.order, set.lines
  for i = 1, #from_order do
    local key = from_order[i]
    order[i] = key
    lines[key] = from_lines[key]
  end
  return { order = order, lines = lines }
end

-- Headers libcurl adds of its own unless told not to with "Name:".
local SUPPRESSED = { accept = "Accept:", ["content-type"] = "Content-Type:" }

local function header_lines(set)
  local out, n, order, lines = {}, 0, set.order, set.lines
  for i = 1, #order do
    local key = order[i]
    local line = lines[key]
    if not line then line = SUPPRESSED[key] end
    if line then
      n = n + 1
      out[n] = line
    end
  end
  return out
end

-- The layers a call starts from, by what it sends (Content-Type) and what
-- it wants back (Accept). Content-Type false: none, not even the form type
-- libcurl gives a POST's empty body (a cancel has no body to describe).
local VARIANTS = {
  plain = {},                                        -- no body: GET, DELETE
  bodiless = { content_type = false },               -- a POST without a body
  json = { content_type = "application/json" },
  bytes = { content_type = "application/octet-stream" }, -- client:request's string body, as it is
  stream = { content_type = "application/json", accept = "text/event-stream" },
  events = { accept = "text/event-stream" },          -- a stream a GET's query asks for
  bytes_events = { content_type = "application/octet-stream", accept = "text/event-stream" },
}

local function header_variants(headers)
  local out = {}
  for name, variant in pairs(VARIANTS) do
    local set = header_copy(headers)
    if variant.accept then header_set(set, "Accept", variant.accept) end
    if variant.content_type ~= nil then header_set(set, "Content-Type", variant.content_type) end
    out[name] = set
  end
  return out
end

-- One table per variant for the header lines shared by its calls.
local function shared_lines_by_variant()
  local out = {}
  for name in pairs(VARIANTS) do out[name] = {} end
  return out
end

-- OPENAI_CUSTOM_HEADERS: "Name: value" lines.
local function custom_env_headers()
  local text = os.getenv("OPENAI_CUSTOM_HEADERS")
  local out = {}
  if text == nil then return out end
  for line in text:gmatch("[^\r\n]+") do
    local name, value = line:match("^%s*([^:]-)%s*:%s*(.-)%s*$")
    if name and name ~= "" then out[#out + 1] = { name, value } end
  end
  return out
end

---------------------------------------------------------------------------
-- Client construction

local CLIENT_OPTIONS = {
  api_key = true, base_url = true, organization = true, project = true, timeout = true,
  max_retries = true, default_headers = true, default_query = true,
  ca_file = true, ca_path = true, proxy = true, max_response_bytes = true, max_response_values = true,
  transport = true,
}

local function optional_string(opts, key, env_name)
  local value = opts[key]
  if value == nil then
    if env_name then return env(env_name) end
    return nil
  end
  if type(value) ~= "string" then error(("openai.new: option '%s' must be a string"):format(key), 3) end
  return value
end

local Client = { __name = "openai.Client" }
Client.__index = Client

function Client:__tostring()
  local state = states[self]
  return ("openai.Client (%s)%s"):format(url.display(state.base_url), state.closed and " closed" or "")
end

-- Releases the client's connections; later calls raise. Safe to repeat.
function Client:close()
  local state = states[self]
  if state and not state.closed then
    state.closed = true
    for _, opened in pairs(state.transports) do opened:close() end
  end
end
Client.__close = Client.close

-- Builds the state behind a client. Raises on bad options.
function M.new_state(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then error("openai.new: options must be a table", 3) end
  for key in pairs(opts) do
    if not CLIENT_OPTIONS[key] then error(("openai.new: unknown option '%s'"):format(tostring(key)), 3) end
  end

  local api_key = optional_string(opts, "api_key", "OPENAI_API_KEY")
  if api_key == nil or api_key == "" then
    error("openai: missing API key: pass api_key to openai.new{} or set the OPENAI_API_KEY environment variable", 3)
  end
  if has_control(api_key) then
    error("openai.new: the API key contains CR, LF or NUL", 3) -- never echo the key
  end

  local base_url = optional_string(opts, "base_url", "OPENAI_BASE_URL")
  if base_url == nil or base_url == "" then base_url = DEFAULT_BASE_URL end
  if has_control(base_url) or base_url:find("%s") or not base_url:match("^[hH][tT][tT][pP][sS]?://.") then
    error("openai.new: base_url must be an http:// or https:// URL without spaces or control characters", 3)
  end

  local timeout = opts.timeout or DEFAULT_TIMEOUT
  local problem = check_timeout(timeout, "openai.new: timeout")
  if problem then error(problem, 3) end
  local max_retries = opts.max_retries or DEFAULT_MAX_RETRIES
  problem = check_retries(max_retries, "openai.new: max_retries")
  if problem then error(problem, 3) end
  max_retries = compat.tointeger(max_retries)

  local organization = optional_string(opts, "organization", "OPENAI_ORG_ID")
  local project = optional_string(opts, "project", "OPENAI_PROJECT_ID")

  -- The headers every request starts from, in the official SDKs' layers.
  local headers = { order = {}, lines = {} }
  header_set(headers, "Accept", "application/json")
  header_set(headers, "User-Agent", "OpenAI/Lua " .. VERSION)
  header_set(headers, "X-Stainless-Lang", "lua")
  header_set(headers, "X-Stainless-Package-Version", VERSION)
  header_set(headers, "X-Stainless-OS", core.os)
  header_set(headers, "X-Stainless-Arch", core.arch)
  header_set(headers, "X-Stainless-Runtime", compat.runtime)
  header_set(headers, "X-Stainless-Runtime-Version", compat.runtime_version)
  for name, value in pairs { ["OpenAI-Organization"] = organization, ["OpenAI-Project"] = project } do
    if has_control(value) then error(("openai.new: %s contains CR, LF or NUL"):format(name), 3) end
    header_set(headers, name, value)
  end
  header_set(headers, "Authorization", "Bearer " .. api_key)
  for _, pair in ipairs(custom_env_headers()) do
    problem = check_header(pair[1], pair[2], "OPENAI_CUSTOM_HEADERS")
    if problem then error(problem, 3) end
    header_set(headers, pair[1], pair[2])
  end
  if opts.default_headers ~= nil then
    if type(opts.default_headers) ~= "table" then error("openai.new: default_headers must be a table", 3) end
    for name, value in pairs(opts.default_headers) do
      problem = check_header(name, value, "openai.new: default_headers")
      if problem then error(problem, 3) end
      header_set(headers, name, value)
    end
  end

  if opts.default_query ~= nil and type(opts.default_query) ~= "table" then
    error("openai.new: default_query must be a table", 3)
  end

  -- TLS trust: the options, else the variables OpenSSL and curl users
  -- know, else libcurl's built-in CA bundle.
  local ca_file, ca_path = optional_string(opts, "ca_file"), optional_string(opts, "ca_path")
  if ca_file == nil and ca_path == nil then
    ca_file = env("SSL_CERT_FILE") or env("CURL_CA_BUNDLE")
    ca_path = env("SSL_CERT_DIR")
  end
  if opts.proxy ~= nil and type(opts.proxy) ~= "string" then error("openai.new: option 'proxy' must be a string", 3) end
  for _, limit in ipairs { "max_response_bytes", "max_response_values" } do
    local value = opts[limit]
    if value ~= nil and (not compat.is_integer(value) or value <= 0) then
      error(("openai.new: %s must be a positive integer"):format(limit), 3)
    end
  end
  local wanted = opts.transport
  if wanted ~= nil and not transport.NAMES[wanted] then
    error("openai.new: transport must be \"curl\" or \"ngx\"", 3)
  end
  local settings = {
    ca_file = ca_file, ca_path = ca_path, proxy = opts.proxy,
    max_response_bytes = opts.max_response_bytes, max_response_values = opts.max_response_values,
  }
  local explicit = { ca_file = opts.ca_file, ca_path = opts.ca_path, proxy = opts.proxy }
  -- The transport the client is sure to use is made now, so that bad
  -- settings fail here; libcurl's outside nginx and in its init phase.
  local first = wanted or "curl"
  local ok, made = pcall(transport.open, first, settings, explicit)
  if not ok then error("openai.new: " .. tostring(made):gsub("^[^:]*:%d+: ", ""), 3) end

  return {
    base_url = base_url,
    timeout = timeout,
    max_retries = max_retries,
    -- Immutable from here on: the header layers of each variant, and the
    -- lines sent by calls without headers or timeout of their own, by
    -- variant and attempt, built on first use (see attempt_lines).
    headers = header_variants(headers),
    shared_lines = shared_lines_by_variant(),
    base = url.split_base(base_url),
    default_query = opts.default_query,
    wanted_transport = wanted,
    transports = { [first] = made },
    settings = settings,
    explicit = explicit,
    max_response_values = opts.max_response_values,
    closed = false,
  }
end

-- Raises, at `level`, when a call cannot be made on this client here and
-- now: it is closed, or it runs where no transport may be used (an nginx
-- phase without cosockets).
function M.check_usable(state, level)
  if state.closed then error("openai: attempt to use a closed client", level + 1) end
  local name, why = transport.choose(state.wanted_transport)
  if name == nil then error("openai: " .. why, level + 1) end
end

function M.new_client(state)
  local client = setmetatable({}, Client)
  states[client] = state
  return client
end

function M.state_of(client)
  return states[client]
end

---------------------------------------------------------------------------
-- Per-call options

local CALL_OPTIONS = { timeout = true, max_retries = true, headers = true, query = true, with_response = true }

-- Returns nil or a message.
function M.check_call_options(opts)
  if opts == nil then return nil end
  if type(opts) ~= "table" then return "options must be a table" end
  for key in pairs(opts) do
    if not CALL_OPTIONS[key] then return ("unknown option '%s'"):format(tostring(key)) end
  end
  if opts.timeout ~= nil then
    local problem = check_timeout(opts.timeout, "timeout")
    if problem then return problem end
  end
  if opts.max_retries ~= nil then
    local problem = check_retries(opts.max_retries, "max_retries")
    if problem then return problem end
  end
  if opts.headers ~= nil then
    if type(opts.headers) ~= "table" then return "headers must be a table" end
    for name, value in pairs(opts.headers) do
      local problem = check_header(name, value, "headers")
      if problem then return problem end
    end
  end
  if opts.query ~= nil and type(opts.query) ~= "table" then return "query must be a table" end
  if opts.with_response ~= nil and type(opts.with_response) ~= "boolean" then return "with_response must be a boolean" end
  return nil
end

local function merge_query(into, from)
  if from == nil then return end
  for key, value in pairs(from) do
    if value == false then into[key] = nil else into[key] = value end
  end
end

---------------------------------------------------------------------------
-- Retries

local function should_retry(status, headers)
  local verdict = headers["x-should-retry"]
  if verdict == "true" then return true end
  if verdict == "false" then return false end
  return status == 408 or status == 409 or status == 429 or status >= 500
end

-- A header's decimal number: optional spaces and "+", digits with an
-- optional fraction and exponent ("1500", "1.5", ".5", "1e3"). Not
-- tonumber(), which also takes hex ("0x400"); no "-": a negative delay is
-- no delay.
local function decimal(text)
  if type(text) ~= "string" then return nil end
  local mantissa, exponent = text:match("^%s*%+?([%d%.]+)([eE]?[%+%-]?%d*)%s*$")
  if mantissa == nil or not (mantissa:find("^%d+%.?%d*$") or mantissa:find("^%.%d+$")) then return nil end
  if exponent ~= "" and not exponent:find("^[eE][%+%-]?%d+$") then return nil end
  return tonumber(mantissa .. exponent)
end

-- Seconds to wait before retry number `retry` (0 for the first): the
-- server's retry-after-ms, else retry-after (seconds or an HTTP date), when
-- above 0 and at most 60 s (0 backs off, as the official SDKs'
-- `timeoutMillis && ...`); otherwise min(0.5 * 2^retry, 8) minus up to 25% jitter.
function M.retry_delay(headers, retry)
  local ms
  if headers then
    ms = decimal(headers["retry-after-ms"])
    if ms == nil and headers["retry-after"] then
      local seconds = decimal(headers["retry-after"])
      if seconds == nil then
        local date = core.http_date(headers["retry-after"])
        if date then seconds = date - os.time() end
      end
      if seconds then ms = seconds * 1000 end
    end
  end
  if ms and ms > 0 and ms <= MAX_SERVER_DELAY * 1000 then
    return ms / 1000
  end
  return math.min(0.5 * 2 ^ retry, 8) * (1 - math.random() * 0.25)
end

---------------------------------------------------------------------------
-- The request pipeline

-- The options of a call that passed none (never written to).
local NO_OPTIONS = {}

-- Prepares a call: everything that can fail on bad input fails here,
-- before any byte is sent. `accumulator`: for a method that can stream, what
-- its events add up to (see openai.stream); a body with `stream = true`
-- then asks for a stream. Returns the prepared call, or nil, a message and
-- which argument is to blame: "body" or "options".
-- accumulator: what a stream's events add up to, for a method that can
-- stream; is_stream: whether the call is one (nil: the body, or for a GET
-- the query, says so with `stream = true`).
function M.prepare(state, method, path, query, body, opts, accumulator, is_stream)
  local problem = M.check_call_options(opts)
  if problem then return nil, problem, "options" end
  opts = opts or NO_OPTIONS
  local text, default_query, params = nil, state.default_query, nil
  if query ~= nil or opts.query ~= nil or (default_query ~= nil and next(default_query) ~= nil) then
    params = {}
    merge_query(params, default_query)
    merge_query(params, query)
    merge_query(params, opts.query)
    local ok
    ok, text = pcall(url.query_string, params)
    if not ok then return nil, text, "options" end
  end
  local encoded
  if type(body) == "string" then
    encoded = body
  elseif body ~= nil then
    local ok
    ok, encoded = pcall(core.json_encode, body)
    if not ok then
      return nil, "cannot encode the request body: " .. tostring(encoded):gsub("^[^:]*:%d+: ", ""), "body"
    end
  end
  -- A stream when the body asks for one (or, for a GET that has no body,
  -- the query: a response's events resumed).
  local stream = is_stream
  if stream == nil then
    stream = accumulator ~= nil and ((type(body) == "table" and rawget(body, "stream") == true)
      or (body == nil and params ~= nil and params.stream == true))
  end
  local variant
  if stream then
    variant = type(body) == "string" and "bytes_events" or encoded and "stream" or "events"
  elseif encoded == nil and method ~= "GET" and method ~= "HEAD" and method ~= "DELETE" then
    variant = "bodiless"
  else
    variant = type(body) == "string" and "bytes" or encoded and "json" or "plain"
  end
  local headers, shared_lines = state.headers[variant], nil
  if opts.timeout then
    headers = header_copy(headers)
    header_set(headers, "X-Stainless-Timeout", ("%d"):format(math.floor(math.min(opts.timeout, 2^53))))
  elseif opts.headers == nil then
    shared_lines = state.shared_lines[variant]
  end
  return {
    method = method,
    url = url.join_split(state.base, path, text),
    body = encoded,
    stream = stream,
    accumulator = accumulator,
    headers = headers,
    shared_lines = shared_lines,
    call_headers = opts.headers,
    timeout = opts.timeout or state.timeout,
    max_retries = opts.max_retries and compat.tointeger(opts.max_retries) or state.max_retries,
    with_response = opts.with_response,
  }
end

local function build_lines(set, attempt, call_headers)
  local headers = header_copy(set)
  header_set(headers, "X-Stainless-Retry-Count", attempt)
  if call_headers then
    for name, value in pairs(call_headers) do header_set(headers, name, value) end
  end
  return header_lines(headers)
end

-- Attempts whose shared lines are kept: a retry budget beyond this is
-- spent in waits anyway.
local MAX_SHARED_ATTEMPT = 16

-- The header lines of one attempt. Those of a call without headers or
-- timeout of its own depend only on the client, the variant and the
-- attempt: they are built once and shared by every such call, and never
-- changed afterwards (the C core reuses what it built from the same table).
local function attempt_lines(call, attempt)
  local shared = call.shared_lines
  if shared == nil then return build_lines(call.headers, attempt, call.call_headers) end
  local lines = shared[attempt]
  if lines == nil then
    lines = build_lines(call.headers, attempt, nil)
    if attempt <= MAX_SHARED_ATTEMPT then shared[attempt] = lines end
  end
  return lines
end

local function success(status, headers, body, decode_error)
  if decode_error then
    return nil, errors.validation(status, headers, body, errors.undecodable("response body", "response body is not valid JSON", decode_error))
  end
  if type(body) ~= "table" or getmetatable(body) == core.array_mt then
    local reason = (body == nil or body == "") and "response body is empty" or "response body is not a JSON object"
    return nil, errors.validation(status, headers, body, reason)
  end
  return object.attach(body, headers["x-request-id"])
end

-- The failure kinds of openai.core worth another attempt; the others
-- ("too_large", "config", "closed", ...) would fail the same way again.
local RETRYABLE = { connection = true, timeout = true }

-- What the transport's request() gives back (see transport/curl.lua):
-- the body as it came for a raw call, the headers whole when the caller
-- wants them, else whatever is cheapest.
local function form_of(call)
  if call.raw then return "raw" end
  if call.with_response then return "headers" end
  return nil
end

local function exchange(through, call, retries)
  local headers = attempt_lines(call, retries)
  if call.stream then
    return through:stream(call.method, call.url, headers, call.body, call.timeout)
  end
  return through:request(call.method, call.url, headers, call.body, call.timeout, form_of(call))
end

-- A successful call's result, with its response's status and headers as a
-- third value when the call asked for them (with_response).
local function succeed(call, status, headers, result, err)
  if result == nil then return nil, err end
  if not call.with_response then return result end
  return result, nil, { status = status, headers = headers }
end

-- A raw call's 2xx: the body as it came, with the status and headers.
local function raw_result(status, headers, body)
  return object.attach({ status = status, headers = headers, body = body }, headers["x-request-id"])
end

-- The transport for a call made now (see openai.transport), made on first
-- use; or nil and an error object (the ngx transport has no proxies and
-- takes its trust from nginx).
local function transport_for(state)
  local name, why = transport.choose(state.wanted_transport)
  if name == nil then error("openai: " .. why, 3) end
  local through = state.transports[name]
  if through == nil then
    local ok, made = pcall(transport.open, name, state.settings, state.explicit)
    if not ok then return nil, errors.failure("config", (tostring(made):gsub("^[^:]*:%d+: ", ""))) end
    through = made
    state.transports[name] = through
  end
  return through
end

-- Sends a prepared call with retries. Returns the decoded object (or a
-- Stream for `stream = true`), or nil and an error object. A stream is
-- retried only until its response starts.
function M.send(state, call)
  if state.closed then error("openai: attempt to use a closed client", 3) end
  local through, unusable = transport_for(state)
  if through == nil then return nil, unusable end
  local retries, collected = 0, false
  while true do
    -- A finalizer may close the client between attempts (during the wait
    -- or the collection below): the call ends, it does not raise.
    if state.closed then return nil, errors.aborted("the client was closed") end
    -- detail: the body's decode error; in conn:request's short form of a
    -- JSON object (headers == false), its request id.
    local status, headers, body, detail = exchange(through, call, retries)
    local err, retryable
    if status == nil then
      local kind, cause = headers, body
      if kind == "fd_limit" and not collected then
        -- Out of file descriptors: a full collection closes abandoned
        -- streams and clients; then this attempt again, not counted.
        collected = true
        compat.full_collect()
      else
        err, retryable, headers = errors.failure(kind, cause), RETRYABLE[kind], nil
      end
    elseif status >= 200 and status < 300 then
      if headers == false then return object.attach(body, detail) end
      if call.raw then return raw_result(status, headers, body) end
      if call.empty and (body == nil or body == "") and detail == nil then return succeed(call, status, headers, true) end
      if call.stream then
        return succeed(call, status, headers, Stream.new(body, status, headers, state.max_response_values, call.accumulator))
      end
      return succeed(call, status, headers, success(status, headers, body, detail))
    else
      if call.raw and type(body) == "string" and body ~= "" then
        -- The error's fields come from its JSON, as for any call.
        body = core.json_decode(body, nil, state.max_response_values) or body
      end
      err, retryable = errors.from_response(status, headers, body), should_retry(status, headers)
    end
    if err ~= nil then
      if not retryable or retries >= call.max_retries then return nil, err end
      through:sleep(M.retry_delay(headers, retries))
      retries = retries + 1
    end
  end
end

return M
