-- The Responses API's typed streams, a body-less POST, a raw request's
-- bytes and with_response: what every transport must do alike.
local assert = require("spec.contract.assert")
local outcome = require("spec.contract.outcome")

local cases = {}

local function typed(kind, json)
  return "event: " .. kind .. "\ndata: " .. json .. "\n\n"
end

local RESPONSE = '{"id":"resp_c","object":"response","status":"completed","output":[{"type":"message","id":"msg_c",'
  .. '"role":"assistant","content":[{"type":"output_text","text":"hi there","annotations":[]}]}]}'

cases[#cases + 1] = {
  name = "a response stream yields its typed events; final() is response.completed's Response",
  script = { { status = 200, headers = { ["content-type"] = "text/event-stream" }, sse_end = "finish", sse = {
    typed("response.created", '{"type":"response.created","sequence_number":0,"response":{"id":"resp_c",'
      .. '"object":"response","status":"in_progress","output":[]}}'),
    typed("response.output_text.delta", '{"type":"response.output_text.delta","sequence_number":1,'
      .. '"output_index":0,"content_index":0,"item_id":"msg_c","delta":"hi"}'),
    { data = typed("response.completed", '{"type":"response.completed","sequence_number":2,"response":'
      .. RESPONSE .. '}'), delay_ms = 30 },
  } } },
  call = function(client, openai)
    local stream = assert(client.responses.create { model = "m", input = "x", stream = true })
    local kinds = {}
    while true do
      local event, err = stream:next()
      if event == nil then
        if err then return { error = outcome.error(err) } end
        break
      end
      kinds[#kinds + 1] = event.type .. "#" .. event.sequence_number
    end
    local final = assert(stream:final())
    return { kinds = kinds, id = final.id, text = openai.output_text(final) }
  end,
  check = function(result, mock)
    assert.same({ kinds = { "response.created#0", "response.output_text.delta#1", "response.completed#2" },
                  id = "resp_c", text = "hi there" }, result)
    assert.equal("text/event-stream", mock:header(mock:requests()[1], "accept"))
  end,
}

cases[#cases + 1] = {
  name = "cancel is a POST with an empty body and no Content-Type",
  script = { { status = 200, json = { id = "resp_c", object = "response", status = "cancelled" } } },
  call = function(client)
    return outcome.of(client.responses.cancel("resp_c"))
  end,
  check = function(result, mock)
    assert.equal("cancelled", result.value.status)
    local req = mock:requests()[1]
    assert.same({ "POST", "/v1/responses/resp_c/cancel", "", "0" },
      { req.method, req.target, req.body, mock:header(req, "content-length") })
    assert.equal(nil, mock:header(req, "content-type"))
  end,
}

-- Every byte value: a binary answer, returned as it came.
local BYTES = {}
for i = 0, 255 do BYTES[#BYTES + 1] = string.char(i) end
BYTES = table.concat(BYTES)

cases[#cases + 1] = {
  name = "a raw request returns the status, the headers and every byte of the body",
  script = { { status = 200, body = BYTES, headers = { ["content-type"] = "application/octet-stream" } } },
  call = function(client)
    local result, err = client:request { method = "POST", path = "/audio/speech", body = { input = "x" }, raw = true }
    if result == nil then return { error = outcome.error(err) } end
    local codes = {}
    for i = 1, #result.body do codes[i] = result.body:byte(i) end
    return { status = result.status, content_type = result.headers["content-type"], codes = codes }
  end,
  check = function(result)
    local codes = {}
    for i = 0, 255 do codes[#codes + 1] = i end
    assert.same({ status = 200, content_type = "application/octet-stream", codes = codes }, result)
  end,
}

cases[#cases + 1] = {
  name = "with_response: a successful call's status and headers as a third value",
  script = { { status = 200, json = { id = "resp_c", object = "response" },
               headers = { ["x-ratelimit-remaining-tokens"] = "999" } } },
  call = function(client)
    local value, err, response = client.responses.retrieve("resp_c", nil, { with_response = true })
    if value == nil then return { error = outcome.error(err) } end
    return { id = value.id, status = response.status, remaining = response.headers["x-ratelimit-remaining-tokens"] }
  end,
  check = function(result)
    assert.same({ id = "resp_c", status = 200, remaining = "999" }, result)
  end,
}

return cases
