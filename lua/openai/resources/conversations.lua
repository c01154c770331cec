-- conversations: the Conversations API declared as data (see
-- openai.resources). A conversation keeps items (messages, tool calls,
-- ...) that responses created with `conversation = id` read and add to.
local conversations = {}

-- Method shapes: see openai.resources. "body?": the body may be left out
-- (an empty object is sent, as the official SDKs do).
conversations.tree = {
  create = { method = "POST", path = "/conversations", args = { "body?" },
    params = "{ items: table[]?, metadata: table<string, string>? }",
    doc = "Creates a conversation, with up to 20 first items." },
  retrieve = { method = "GET", path = "/conversations/{}", args = { "conversation_id" },
    doc = "A conversation." },
  update = { method = "POST", path = "/conversations/{}", args = { "conversation_id", "body" },
    params = "{ metadata: table<string, string> }",
    doc = "Sets a conversation's metadata." },
  delete = { method = "DELETE", path = "/conversations/{}", args = { "conversation_id" },
    doc = "Deletes a conversation (not its items): `{ object = \"conversation.deleted\", id, deleted = true }`." },
  items = {
    create = { method = "POST", path = "/conversations/{}/items", args = { "conversation_id", "body" },
      params = "{ items: table[] }",
      doc = "Adds up to 20 items; returns them as a list." },
    list = { method = "GET", path = "/conversations/{}/items", args = { "conversation_id", "query" }, page = true,
      query = "{ after: string?, limit: integer?, order: \"asc\"|\"desc\"?, include: string[]? }",
      doc = "A page of a conversation's items." },
    retrieve = { method = "GET", path = "/conversations/{}/items/{}", args = { "conversation_id", "item_id" },
      doc = "One item of a conversation." },
    delete = { method = "DELETE", path = "/conversations/{}/items/{}", args = { "conversation_id", "item_id" },
      doc = "Deletes an item; returns the conversation." },
  },
}

return conversations
