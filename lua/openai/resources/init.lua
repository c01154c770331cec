-- The API's resources, declared as data. Each method names its HTTP method,
-- its path with `{}` for path parameters, and what its arguments are; `bind`
-- turns the declarations into functions callable with a dot or a colon.
local client_core = require("openai.client")
local Page = require("openai.page")
local url = require("openai.url")

local prepare, send = client_core.prepare, client_core.send

local resources = {}

-- Method shapes: args lists the positional arguments before `opts`.
--   "id"    a path parameter (non-empty string, not "." or "..")
--   "body"  a table sent as the JSON body
--   "body?" the same, which may be left out (an empty object is sent)
--   "query" a table of query parameters
-- page = true: the result is a cursor page; stream = an accumulator (see
-- openai.stream): with `stream = true` in its body (or its query, for a
-- GET) the call returns a stream of the events that accumulator adds up;
-- empty = true: a 2xx answer may have no body (the call then returns
-- true). Each resource's module declares its methods and brings its own
-- accumulator.
resources.tree = {
  chat = require("openai.resources.chat").tree,
  responses = require("openai.resources.responses").tree,
  conversations = require("openai.resources.conversations").tree,
}

local function check_id(name, value)
  if type(value) ~= "string" or value == "" then
    return ("%s must be a non-empty string, got %s"):format(name, value == "" and "an empty string" or type(value))
  end
  if value == "." or value == ".." then
    return ("%s \"%s\" can't be safely passed as a path parameter"):format(name, value)
  end
  return nil
end

-- A path template split once at its `{}`s: the literal pieces around the
-- path parameters ("/a/{}/b" -> { "/a/", "/b" }).
local function compile_path(template)
  local pieces = {}
  for piece in (template .. "{}"):gmatch("(.-){}") do pieces[#pieces + 1] = piece end
  return pieces
end

-- A function for one declared method, callable with a dot or a colon (a
-- colon call passes `namespace` first; it is dropped). `get_state` returns
-- the client state (it may build the default client, or raise for a
-- closed one). Methods take at most two arguments before `opts`, passed
-- as plain parameters: no table per call.
local function method_function(name, spec, get_state, namespace)
  local kinds, n_args, method, pieces = spec.args, #spec.args, spec.method, compile_path(spec.path)
  assert(n_args <= 2, "a method takes at most two arguments before its options")
  -- Which argument a problem found by prepare() is reported against.
  local blame = { options = n_args + 1 }
  for i = 1, n_args do
    if kinds[i] == "body" or kinds[i] == "body?" then blame.body = i end
  end
  local is_namespace = { [namespace] = true } -- a raw test, as rawequal, without a call
  -- The function the caller calls raises for bad arguments itself (level
  -- 2): through a tail call Lua 5.1 would count one level more.
  return function(a1, a2, a3, a4)
    if is_namespace[a1] then a1, a2, a3 = a2, a3, a4 end
    local path, n_ids, body, query = pieces[1], 0, nil, nil
    for i = 1, n_args do
      local kind, value = kinds[i], a2
      if i == 1 then value = a1 end
      if kind == "body" or kind == "body?" then
        if value == nil and kind == "body?" then
          value = {}
        elseif type(value) ~= "table" then
          error(("bad argument #%d to '%s' (params must be a table)"):format(i, name), 2)
        end
        body = value
      elseif kind == "query" then
        if value ~= nil and type(value) ~= "table" then
          error(("bad argument #%d to '%s' (query must be a table)"):format(i, name), 2)
        end
        query = value
      else
        local problem = check_id(kind, value)
        if problem then error(("bad argument #%d to '%s' (%s)"):format(i, name, problem), 2) end
        n_ids = n_ids + 1
        path = path .. url.encode_path_param(value) .. pieces[n_ids + 1]
      end
    end
    local opts = a3
    if n_args == 0 then opts = a1 elseif n_args == 1 then opts = a2 end
    local state = get_state(2)
    local call, problem, culprit = prepare(state, method, path, query, body, opts, spec.stream)
    if not call then error(("bad argument #%d to '%s' (%s)"):format(blame[culprit], name, problem), 2) end
    call.empty = spec.empty
    if not spec.page then return send(state, call) end
    local function fetch(prepared)
      local result, err = send(state, prepared)
      if result == nil then return nil, err end
      local request_id = result._request_id
      return Page.wrap(result, request_id, function(after)
        local next_query = {}
        for key, value in pairs(query or {}) do next_query[key] = value end
        next_query.after = after
        return fetch(assert(prepare(get_state(2), method, path, next_query, nil, opts)))
      end)
    end
    return fetch(call)
  end
end

-- A raw stream's events add up to nothing: they are read one by one.
local RAW_STREAM = { name = "openai.Stream" }
function RAW_STREAM.new() return true end
function RAW_STREAM.add() end
function RAW_STREAM.final()
  error("a stream from client:request has no final object: read its events with next()", 3)
end

local REQUEST_FIELDS = {
  method = true, path = true, query = true, body = true, headers = true, stream = true, raw = true,
  timeout = true, max_retries = true, with_response = true,
}
local CALL_OPTIONS = { "headers", "timeout", "max_retries", "with_response" }

-- Why a raw request's description cannot be sent, or nil.
local function check_request(spec)
  if type(spec) ~= "table" then return "request must be a table" end
  for key in pairs(spec) do
    if not REQUEST_FIELDS[key] then return ("unknown field '%s'"):format(tostring(key)) end
  end
  if type(spec.method) ~= "string" or not spec.method:match("^[A-Z]+$") then
    return "method must be an HTTP method in capitals, such as \"POST\""
  end
  if type(spec.path) ~= "string" or spec.path:sub(1, 1) ~= "/" then
    return "path must be a string starting with \"/\" (relative to the base URL)"
  end
  if spec.query ~= nil and type(spec.query) ~= "table" then return "query must be a table" end
  local body = spec.body
  if body ~= nil and type(body) ~= "table" and type(body) ~= "string" then
    return "body must be a table (sent as JSON) or a string (sent as it is)"
  end
  for _, flag in ipairs { "stream", "raw" } do
    if spec[flag] ~= nil and type(spec[flag]) ~= "boolean" then return flag .. " must be a boolean" end
  end
  if spec.stream and spec.raw then return "stream and raw cannot both be true" end
  return nil
end

-- client:request{ method, path, query, body, headers, stream, raw, timeout,
-- max_retries, with_response }: any endpoint through the same pipeline as
-- the declared methods (authentication, headers, retries, timeouts,
-- errors). Returns the decoded JSON; with raw, { status, headers, body }
-- with the body as it came; with stream, a stream of the decoded events.
-- Callable with a dot or a colon on `owner`.
function resources.request_function(get_state, owner)
  return function(a1, a2)
    local spec = a1
    if rawequal(a1, owner) then spec = a2 end
    local problem = check_request(spec)
    if problem then error(("bad argument #1 to 'request' (%s)"):format(problem), 2) end
    local opts = {}
    for _, key in ipairs(CALL_OPTIONS) do opts[key] = spec[key] end
    local state = get_state(2)
    -- A raw call says itself whether it is a stream; its body goes as given.
    local call, why = prepare(state, spec.method, spec.path, spec.query, spec.body, opts,
      spec.stream and RAW_STREAM or nil, spec.stream == true)
    if not call then error(("bad argument #1 to 'request' (%s)"):format(why), 2) end
    call.raw = spec.raw
    return send(state, call)
  end
end

-- Builds the namespace tables for `tree`.
function resources.bind(get_state, tree, prefix)
  tree = tree or resources.tree
  prefix = prefix or ""
  local namespace = {}
  for key, spec in pairs(tree) do
    if spec.method then
      namespace[key] = method_function(prefix .. key, spec, get_state, namespace)
    else
      namespace[key] = resources.bind(get_state, spec, prefix .. key .. ".")
    end
  end
  return namespace
end

return resources
