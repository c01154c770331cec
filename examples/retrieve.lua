-- Fetches a stored chat completion and prints its main fields.
--   lua5.4 examples/retrieve.lua [completion_id]
-- Uses OPENAI_API_KEY and OPENAI_BASE_URL (the bundled mock in `make demo`).
local openai = require("openai")

local id = arg[1] or "chatcmpl-abc123"
local completion, err = openai.chat.completions.retrieve(id)
if not completion then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end

local function show(value)
  if value == openai.null or value == nil then return "null" end
  return tostring(value)
end

print("id:          " .. completion.id)
print("model:       " .. completion.model)
print("created:     " .. os.date("!%Y-%m-%d %H:%M:%S UTC", completion.created))
for _, choice in ipairs(completion.choices) do
  local message = choice.message
  print(("message %d:   [%s, finish_reason %s]"):format(choice.index, message.role, show(choice.finish_reason)))
  print(show(message.content))
end
local usage = completion.usage
if usage and usage ~= openai.null then
  print(("usage:       %d prompt + %d completion = %d tokens"):format(
    usage.prompt_tokens, usage.completion_tokens, usage.total_tokens))
end
print("seed:        " .. show(completion.seed) .. " (" .. show(math.type(completion.seed)) .. ")")
print("request id:  " .. show(completion._request_id))
