-- The documents of the finalizer rounds: the spec writes them where the
-- hostile server serves them, the rounds process compares with them.
local openai = require("openai")

local fixture = {}

-- A 1.7 MB chat.completion of many small values: decoding it allocates
-- all the time.
function fixture.big_text()
  local items = {}
  for i = 1, 23000 do
    items[i] = { token = "tok" .. i, logprob = -0.5, bytes = { 116, 111, 107 }, top_logprobs = openai.array() }
  end
  return openai.json.encode {
    id = "chatcmpl-big", object = "chat.completion", created = 1738960610, model = "gpt-4o-mini",
    choices = { { index = 0, finish_reason = "stop",
                  message = { role = "assistant", content = "big", refusal = openai.null },
                  logprobs = { content = items, refusal = openai.null } } },
    usage = { prompt_tokens = 1, completion_tokens = 23000, total_tokens = 23001 },
  }
end

function fixture.golden_text()
  local f = assert(io.open("spec/fixtures/chatcmpl-abc123.json", "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

return fixture
