-- The two install routes, `make install` and `luarocks make`, give the same
-- LuaRocks tree for every runtime, and that runtime's interpreter loads it.
local process = require("spec.helpers.process")
local util = require("spec.helpers.util")

-- Every runtime from the suite's default one (`make test`, Lua 5.4); a
-- suite run on another runtime (`make test-all`) checks that one alone.
local RUNTIMES = util.runtime == "lua5.4" and { "lua5.1", "lua5.2", "lua5.3", "lua5.4", "luajit" }
  or { util.runtime }
local SEED = '{"seed":4944116822809979520}'

-- The builds and interpreters here load nothing of a sanitizer build:
-- `make asan` would only slow them down with its preloaded runtime.
local function capture(command)
  local output, ok = process.run("env -u LD_PRELOAD sh -c " .. util.shell_quote(command))
  return ok, output
end

-- LuaRocks' directory name of a runtime's version.
local function version_of(name)
  return name == "luajit" and "5.1" or name:sub(4)
end

local function tree_files(dir)
  local ok, output = capture("cd " .. util.shell_quote(dir) .. " && find share lib/lua -type f | sort")
  assert(ok, output)
  return output
end

-- The tree every route must give: each module under lua/openai/ and the C core.
local function expected_files(version)
  local ok, listing = capture("cd lua/openai && find . -name '*.lua' -printf '%P\\n' | sort")
  assert(ok, listing)
  local files = { "lib/lua/" .. version .. "/openai/core.so" }
  for name in listing:gmatch("[^\n]+") do
    files[#files + 1] = "share/lua/" .. version .. "/openai/" .. name
  end
  table.sort(files)
  return table.concat(files, "\n") .. "\n"
end

-- Loads the tree with the runtime's interpreter, with no other path to
-- search, and round-trips an integer beyond 2^53.
local function try_tree(name, dir)
  local version = version_of(name)
  local code = ([[
    package.path = DIR .. "/share/lua/VERSION/?.lua;" .. DIR .. "/share/lua/VERSION/?/init.lua"
    package.cpath = DIR .. "/lib/lua/VERSION/?.so"
    local openai = require("openai")
    local value = openai.json.decode(SEED)
    io.write(openai.json.encode(value), " ", tostring(value.seed), "\n")
  ]]):gsub("VERSION", version):gsub("DIR", ("%q"):format(dir)):gsub("SEED", ("%q"):format(SEED))
  local ok, output = capture(name .. " -e " .. util.shell_quote(code))
  return ok, output
end

-- The dynamic symbols the module defines.
local function exported(dir, version)
  local ok, output = capture("nm -D --defined-only " .. util.shell_quote(dir .. "/lib/lua/" .. version
    .. "/openai/core.so") .. " | awk '{ print $2, $3 }'")
  assert(ok, output)
  return output
end

local function check_tree(name, dir)
  local version = version_of(name)
  assert.are.equal(expected_files(version), tree_files(dir))
  assert.are.equal("T luaopen_openai_core\n", exported(dir, version))
  local ok, output = try_tree(name, dir)
  assert(ok, output)
  -- tostring of the seed: LuaJIT's int64_t cdata says so with "LL"
  local shown = name == "luajit" and "4944116822809979520LL" or "4944116822809979520"
  assert.are.equal(SEED .. " " .. shown .. "\n", output)
end

describe("installation", function()
  for _, name in ipairs(RUNTIMES) do
    local version = version_of(name)

    it("make install LUA=" .. name .. " PREFIX= gives the tree of Lua " .. version .. ", which " .. name
      .. " loads", function()
      local dir = process.temp_dir()
      local ok, output = capture("make --no-print-directory install LUA=" .. name .. " PREFIX="
        .. util.shell_quote(dir))
      assert(ok, output)
      check_tree(name, dir)
      process.remove_dir(dir)
    end)

    -- Debian's luarocks runs lua5.1 for --lua-version=5.1; a configuration
    -- naming luajit and its headers points it at LuaJIT instead.
    it("luarocks --lua-version=" .. version .. " make, offline, gives the same tree for " .. name, function()
      local dir = process.temp_dir()
      -- a copy, so luarocks' objects never land in the working tree
      local src = process.temp_dir()
      local config = ""
      if name == "luajit" then
        process.write_file(src .. "/luajit.lua",
          'lua_interpreter = "luajit"\nvariables = { LUA_INCDIR = "/usr/include/luajit-2.1" }\n')
        config = "LUAROCKS_CONFIG=" .. util.shell_quote(src .. "/luajit.lua") .. " "
      end
      local ok, output = capture(("cp -r src lua Makefile openai-scm-1.rockspec %s/ && cd %s && "
        .. "MAKEFLAGS=-j4 %sluarocks --lua-version=%s make --tree %s openai-scm-1.rockspec"):format(
        util.shell_quote(src), util.shell_quote(src), config, version, util.shell_quote(dir)))
      assert(ok, output)
      if name == "luajit" then
        assert.truthy(output:find("-I/usr/include/luajit-2.1 ", 1, true), output)
      end
      check_tree(name, dir)
      process.remove_dir(dir)
      process.remove_dir(src)
    end)
  end
end)
