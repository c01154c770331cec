-- A stored completion's life: create with store = true, retrieve, update
-- its metadata, find it with list, read its messages, delete it.
--   lua5.4 examples/stored.lua
local openai = require("openai")

local function check(value, err)
  if value == nil then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
  end
  return value
end

local completions = openai.chat.completions
local created = check(completions.create {
  model = os.getenv("OPENAI_MODEL") or "gpt-4o-mini",
  store = true,
  metadata = { topic = "poems" },
  seed = 4944116822809979520, -- integers go out exactly
  messages = { { role = "user", content = "Write a haiku about stored completions." } },
})
print("created   " .. created.id)

local fetched = check(completions.retrieve(created.id))
print("retrieved " .. fetched.id .. ": " .. fetched.choices[1].message.content:gsub("\n", " / "))

local updated = check(completions.update(created.id, { metadata = { topic = "haiku" } }))
print("updated   metadata.topic = " .. updated.metadata.topic)

local count = 0
for item in check(completions.list { limit = 20, metadata = { topic = "haiku" } }):iter() do
  count = count + 1
  print(("listed    %s (%s)"):format(item.id, item.model))
end
print(("listed    %d completion(s) with topic haiku"):format(count))

for _, message in ipairs(check(completions.messages.list(created.id, { order = "asc" })).data) do
  print(("message   %s: %s"):format(message.role, message.content))
end

local deleted = check(completions.delete(created.id))
print(("deleted   %s: %s"):format(deleted.id, tostring(deleted.deleted)))
