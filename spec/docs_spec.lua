-- Every declared method is documented: the README's method table and the
-- type stubs' resources are generated from the declarations (tools/docs.lua,
-- `make docs`), and must be what they generate now.
local resources = require("openai.resources")
local docs = require("tools.docs")
local util = require("spec.helpers.util")

describe("documentation", function()
  it("the README's method table and the type stubs are up to date with the declarations (make docs)", function()
    assert.are.same({}, docs.check(resources.tree))
  end)

  local readme = util.read_file("README.md")
  local stubs = util.read_file("types/openai.lua")
  for _, method in ipairs(docs.each_method(resources.tree, "", {})) do
    it(method.path .. " is in the README's table and the type stubs", function()
      assert.truthy(readme:find("| `" .. method.path .. "(", 1, true), method.path .. " missing from README.md")
      assert.truthy(stubs:find("." .. method.name .. "(", 1, true), method.path .. " missing from types/openai.lua")
    end)
  end
end)
