-- Creates a chat completion and prints the reply.
--   lua5.4 examples/chat.lua ["your prompt"]
local openai = require("openai")

local prompt = arg[1] or "Write a haiku about Lua."
local completion, err = openai.chat.completions.create {
  model = os.getenv("OPENAI_MODEL") or "gpt-4o-mini",
  messages = { { role = "user", content = prompt } },
}
if not completion then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end

print(completion.choices[1].message.content)
local usage = completion.usage
print(("-- %s, %d tokens, request %s"):format(completion.model, usage.total_tokens, completion._request_id))
