-- A conversation: responses that remember what was said before, and the
-- conversation's items read back.
--   lua5.4 examples/conversation.lua
local openai = require("openai")

local model = os.getenv("OPENAI_MODEL") or "gpt-4o-mini"

local function check(value, err)
  if value == nil then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
  end
  return value
end

local conversation = check(openai.conversations.create { metadata = { topic = "demo" } })
print("conversation " .. conversation.id)

for _, line in ipairs { "My name is Ada.", "What is my name?" } do
  local response = check(openai.responses.create { model = model, conversation = conversation.id, input = line })
  print(("> %s\n%s"):format(line, openai.output_text(response)))
end

-- Everything said, oldest first, page after page.
for item in check(openai.conversations.items.list(conversation.id, { order = "asc" })):iter() do
  local parts = {}
  for _, part in ipairs(item.content or {}) do parts[#parts + 1] = part.text or "" end
  print(("  %s %s: %s"):format(item.type, item.role or "", table.concat(parts)))
end

check(openai.conversations.delete(conversation.id))
print("deleted " .. conversation.id)
