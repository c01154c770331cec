-- The Responses API: a response created, its text streamed as it arrives,
-- the stored one read back, its input items listed, then deleted.
--   lua5.4 examples/responses.lua ["your prompt"]
local openai = require("openai")

local model = os.getenv("OPENAI_MODEL") or "gpt-4o-mini"
local prompt = arg[1] or "Say hello in three languages."

local function check(value, err)
  if value == nil then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
  end
  return value
end

-- 1. One response, whole.
local response = check(openai.responses.create { model = model, input = prompt })
print(("%s (%s): %s"):format(response.id, response.status, openai.output_text(response)))

-- 2. The same prompt streamed: the text deltas as they arrive.
local stream = check(openai.responses.create { model = model, input = prompt, stream = true })
while true do
  local event, failure = stream:next()
  if failure then check(nil, failure) end
  if event == nil then break end
  if event.type == "response.output_text.delta" then
    io.write(event.delta)
    io.flush()
  end
end
print()
local final = check(stream:final())
print(("-- streamed %s: %d input + %d output tokens"):format(final.id, final.usage.input_tokens,
  final.usage.output_tokens))

-- 3. The first response again, as stored, and what it was given.
local stored = check(openai.responses.retrieve(response.id))
print(("retrieved %s: %s"):format(stored.id, openai.output_text(stored)))
local items = check(openai.responses.input_items.list(response.id))
for _, item in ipairs(items.data) do print(("  input item %s: %s"):format(item.id, item.type)) end

-- 4. Deleted.
check(openai.responses.delete(response.id))
check(openai.responses.delete(final.id))
print("deleted " .. response.id .. " and " .. final.id)
