-- The golden completion (chatcmpl-abc123) as lines of exact text, which
-- the specs that run the module in other hosts (nginx, Debian's luajit)
-- print there and expect here. Numbers go through the encoder, which writes
-- their exact digits whatever the runtime holds them in.
local golden = {}

golden.FIELDS = table.concat({
  "id=chatcmpl-abc123",
  "model=gpt-4o-2024-08-06",
  "created=1738960610",
  "seed=4944116822809979520",
  "total_tokens=31",
  "content=Mind of circuits hum, \nLearning patterns in silence— \nFuture's quiet spark.",
}, "\n") .. "\n"

-- The same lines for a retrieved completion, or "error: ..." for a failure.
function golden.fields(openai, cc, err)
  if cc == nil then return "error: " .. tostring(err) .. "\n" end
  return table.concat({
    "id=" .. cc.id,
    "model=" .. cc.model,
    "created=" .. openai.json.encode(cc.created),
    "seed=" .. openai.json.encode(cc.seed),
    "total_tokens=" .. openai.json.encode(cc.usage.total_tokens),
    "content=" .. cc.choices[1].message.content,
  }, "\n") .. "\n"
end

return golden
