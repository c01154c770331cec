-- Streams a reply: tokens are printed as they arrive, then the usage.
--   lua5.4 examples/stream.lua ["your prompt"]
local openai = require("openai")

local stream, err = openai.chat.completions.create {
  model = os.getenv("OPENAI_MODEL") or "gpt-4o-mini",
  messages = { { role = "user", content = arg[1] or "Count from one to ten in words." } },
  stream = true,
  stream_options = { include_usage = true },
}
if not stream then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end

local usage
while true do
  local chunk, failure = stream:next()
  if failure then
    io.stderr:write("\n", tostring(failure), "\n")
    os.exit(1)
  end
  if chunk == nil then break end
  local choice = chunk.choices[1]
  if choice and type(choice.delta.content) == "string" then
    io.write(choice.delta.content)
    io.flush()
  end
  if chunk.usage ~= nil and chunk.usage ~= openai.null then usage = chunk.usage end
end
print()
if usage then
  print(("-- %d prompt + %d completion = %d tokens"):format(usage.prompt_tokens, usage.completion_tokens, usage.total_tokens))
end
