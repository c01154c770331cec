-- Bad input is refused before anything is sent, with the same message on
-- every transport.
local assert = require("spec.contract.assert")
local outcome = require("spec.contract.outcome")

local cases = {}

local function refused(name, fn, message)
  cases[#cases + 1] = {
    name = name,
    call = function(client) return { message = outcome.raised(fn, client) } end,
    check = function(result, mock)
      assert.equal(message, result.message)
      assert.equal(0, mock:stats().requests)
    end,
  }
end

refused("an empty id", function(c) return c.chat.completions.retrieve("") end,
  "bad argument #1 to 'chat.completions.retrieve' (completion_id must be a non-empty string, got an empty string)")
refused("\"..\" as an id", function(c) return c.chat.completions.delete("..") end,
  "bad argument #1 to 'chat.completions.delete' (completion_id \"..\" can't be safely passed as a path parameter)")
refused("params that are not a table", function(c) return c.chat.completions.create("hi") end,
  "bad argument #1 to 'chat.completions.create' (params must be a table)")
refused("an unknown option", function(c) return c.chat.completions.retrieve("x", { retries = 1 }) end,
  "bad argument #2 to 'chat.completions.retrieve' (unknown option 'retries')")
refused("a header with CR LF", function(c) return c.chat.completions.retrieve("x", { headers = { ["X-A"] = "a\r\nb" } }) end,
  "bad argument #2 to 'chat.completions.retrieve' (headers: header 'X-A' contains CR, LF or NUL)")
refused("a body that cannot be encoded", function(c) return c.chat.completions.create { model = "m", f = print } end,
  "bad argument #1 to 'chat.completions.create' (cannot encode the request body: cannot encode function at f)")

return cases
