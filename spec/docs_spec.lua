-- Every declared method is documented in the README and in the type stubs.
local resources = require("openai.resources")
local util = require("spec.helpers.util")

local function methods(tree, prefix, out)
  for name, spec in pairs(tree) do
    if spec.method then
      out[#out + 1] = { path = prefix .. name, name = name, spec = spec }
    else
      methods(spec, prefix .. name .. ".", out)
    end
  end
  return out
end

describe("documentation", function()
  local readme = util.read_file("README.md")
  local stubs = util.read_file("types/openai.lua")
  for _, method in ipairs(methods(resources.tree, "", {})) do
    it(method.path .. " is in the README and the type stubs", function()
      local short = method.path:gsub("^chat%.completions%.", "")
      assert.truthy(readme:find(short .. "(", 1, true), method.path .. " missing from README.md")
      assert.truthy(readme:find(method.spec.method .. " " .. method.spec.path:gsub("{}", "{completion_id}"), 1, true),
        method.path .. ": its HTTP route is missing from README.md")
      assert.truthy(stubs:find("." .. method.name .. "(", 1, true), method.path .. " missing from types/openai.lua")
    end)
  end
end)
