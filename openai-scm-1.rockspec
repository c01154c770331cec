rockspec_format = "3.0"
package = "openai"
version = "scm-1"
source = {
  url = "git+file:///dev/null", -- built from a checkout with `luarocks make`
}
description = {
  summary = "Native Lua client for the OpenAI API (a C core on libcurl)",
  detailed = [[
    require("openai"): chat completions with exact JSON mirroring (int64
    integers, floats, null, empty arrays), the official SDKs' retries, errors
    and headers, keep-alive connections per client.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1, < 5.5",
}
external_dependencies = {
  -- Debian keeps curl.h in the multiarch include directory, which the
  -- compiler searches by itself but luarocks does not: check the library.
  CURL = { library = "curl" },
}
build = {
  type = "builtin",
  modules = {
    ["openai.core"] = {
      sources = {
        "src/buffer.c", "src/compat.c", "src/core.c", "src/event_queue.c", "src/http.c", "src/int64.c", "src/interrupt.c",
        "src/json_decode.c", "src/json_encode.c", "src/outcome.c", "src/sse.c", "src/stream.c",
        "src/transfer.c",
      },
      defines = { "_POSIX_C_SOURCE=200809L" },
      libraries = { "curl", "m", "pthread" },
      incdirs = { "$(CURL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)" },
    },
    ["openai"] = "lua/openai/init.lua",
    ["openai.client"] = "lua/openai/client.lua",
    ["openai.compat"] = "lua/openai/compat.lua",
    ["openai.errors"] = "lua/openai/errors.lua",
    ["openai.object"] = "lua/openai/object.lua",
    ["openai.page"] = "lua/openai/page.lua",
    ["openai.stream"] = "lua/openai/stream.lua",
    ["openai.resources"] = "lua/openai/resources.lua",
    ["openai.url"] = "lua/openai/url.lua",
  },
}
