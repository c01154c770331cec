-- The API's resources, declared as data. Each method names its HTTP method,
-- its path with `{}` for path parameters, and what its arguments are; `bind`
-- turns the declarations into functions callable with a dot or a colon.
local client_core = require("openai.client")
local Page = require("openai.page")
local url = require("openai.url")

local resources = {}

-- Method shapes: args lists the positional arguments before `opts`.
--   "id"    a path parameter (non-empty string, not "." or "..")
--   "body"  a table sent as the JSON body
--   "query" a table of query parameters
resources.tree = {
  chat = {
    completions = {
      create = { method = "POST", path = "/chat/completions", args = { "body" } },
      retrieve = { method = "GET", path = "/chat/completions/{}", args = { "completion_id" } },
      update = { method = "POST", path = "/chat/completions/{}", args = { "completion_id", "body" } },
      list = { method = "GET", path = "/chat/completions", args = { "query" }, page = true },
      delete = { method = "DELETE", path = "/chat/completions/{}", args = { "completion_id" } },
      messages = {
        list = { method = "GET", path = "/chat/completions/{}/messages", args = { "completion_id", "query" }, page = true },
      },
    },
  },
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

local function build_path(template, ids)
  local i = 0
  return (template:gsub("{}", function()
    i = i + 1
    return url.encode_path_param(ids[i])
  end))
end

-- A function for one declared method. `get_state` returns the client state
-- (it may build the default client, or raise for a closed one).
local function method_function(name, spec, get_state)
  local n_args = #spec.args
  -- Which argument a problem found by prepare() is reported against.
  local blame = { options = n_args + 1 }
  for i, kind in ipairs(spec.args) do
    if kind == "body" then blame.body = i end
  end
  return function(...)
    local args = table.pack(...)
    local ids, body, query = {}, nil, nil
    for i, kind in ipairs(spec.args) do
      local value = args[i]
      if kind == "body" then
        if type(value) ~= "table" then
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
        ids[#ids + 1] = value
      end
    end
    local state = get_state(2)
    local path, opts = build_path(spec.path, ids), args[n_args + 1]
    local call, problem, culprit = client_core.prepare(state, spec.method, path, query, body, opts)
    if not call then error(("bad argument #%d to '%s' (%s)"):format(blame[culprit], name, problem), 2) end
    if not spec.page then return client_core.send(state, call) end
    local function fetch(prepared)
      local result, err = client_core.send(state, prepared)
      if result == nil then return nil, err end
      local request_id = result._request_id
      return Page.wrap(result, request_id, function(after)
        local next_query = {}
        for key, value in pairs(query or {}) do next_query[key] = value end
        next_query.after = after
        return fetch(assert(client_core.prepare(get_state(2), spec.method, path, next_query, nil, opts)))
      end)
    end
    return fetch(call)
  end
end

-- Builds the namespace tables for `tree`. A colon call passes the namespace
-- itself first; it is dropped, so both call styles work.
function resources.bind(get_state, tree, prefix)
  tree = tree or resources.tree
  prefix = prefix or ""
  local namespace = {}
  for key, spec in pairs(tree) do
    if spec.method then
      local call = method_function(prefix .. key, spec, get_state)
      namespace[key] = function(first, ...)
        if rawequal(first, namespace) then return call(...) end
        return call(first, ...)
      end
    else
      namespace[key] = resources.bind(get_state, spec, prefix .. key .. ".")
    end
  end
  return namespace
end

return resources
