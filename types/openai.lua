---@meta openai
-- Type stubs for lua-language-server (LuaLS). Point `workspace.library` at
-- this folder; nothing here runs.

---@class openai.Error
---@field name string  BadRequestError | AuthenticationError | PermissionDeniedError | NotFoundError | ConflictError | UnprocessableEntityError | RateLimitError | InternalServerError | APIError | APIConnectionError | APIConnectionTimeoutError | APIResponseValidationError | APIUserAbortError
---@field status integer?
---@field message string
---@field type string?
---@field code string?
---@field param string?
---@field error any       the error object of the body
---@field request_id string?
---@field headers table<string, string>?
---@field body any         the decoded error body, or its raw text
---@field cause string?    libcurl's description, for connection errors; what was closed, for APIUserAbortError
---@field response table?  from a response stream's final(): the Response of response.failed / response.incomplete, or the one assembled when the stream ended without response.completed
local Error = {}

---True for this kind and every kind below it (every kind is an APIError).
---@param name string
---@return boolean
function Error:is(name) end

---@class openai.RequestOptions
---@field timeout number?      seconds for each attempt
---@field max_retries integer?
---@field headers table<string, string|false>?  false removes a header; Content-Length, Transfer-Encoding, Connection, Host, Expect, Upgrade, TE and Trailer are refused
---@field query table<string, any>?
---@field with_response boolean?  return the response's { status, headers } as a third value on success

---@class openai.ClientOptions
---@field api_key string?        default OPENAI_API_KEY
---@field base_url string?       default OPENAI_BASE_URL, else https://api.openai.com/v1
---@field organization string?   default OPENAI_ORG_ID
---@field project string?        default OPENAI_PROJECT_ID
---@field timeout number?        seconds per attempt (600)
---@field max_retries integer?   2
---@field default_headers table<string, string|false>?  the framing headers are refused, as in RequestOptions.headers
---@field default_query table<string, any>?
---@field ca_file string?
---@field ca_path string?
---@field proxy string?        [scheme://][user[:password]@]host[:port][/], or "" to ignore the proxy environment variables
---@field max_response_bytes integer?  cap on a response body and on one stream event (64 MiB)
---@field max_response_values integer? cap on the JSON values one body or event decodes to (8 388 608)
---@field transport ("curl"|"ngx")? the transport: nil picks cosockets inside nginx request handlers, libcurl elsewhere

---@class openai.Page
---@field object string
---@field data table[]
---@field first_id string|lightuserdata
---@field last_id string|lightuserdata
---@field has_more boolean
---@field _request_id string?
local Page = {}

---@return boolean
function Page:has_next_page() end

---@return openai.Page?, openai.Error?
function Page:next_page() end

---Every item of this page and of the pages after it; a failed fetch raises the error object.
---@return fun(): table?
function Page:iter() end

---@class openai.ChatCompletionStream
---@field status integer
---@field headers table<string, string>
---@field _request_id string?
local Stream = {}

---The next chat.completion.chunk, nil at the end, or nil and an error
---(APIUserAbortError after close() cut the stream short). Never raises.
---@return table?, openai.Error?
function Stream:next() end

---Reads the rest and returns the assembled chat.completion.
---@return table?, openai.Error?
function Stream:final() end

---For `for chunk in stream:iter() do`: a break closes the stream.
function Stream:iter() end

---Aborts the transfer; next() and final() then return APIUserAbortError,
---unless the stream had already ended.
function Stream:close() end

---@class openai.ResponseStream
---@field status integer
---@field headers table<string, string>
---@field _request_id string?
local ResponseStream = {}

---The next event (a table with `type` and `sequence_number`), nil at the
---end, or nil and an error (an `error` event, a failed read, a close).
---@return table?, openai.Error?
function ResponseStream:next() end

---Reads the rest and returns the Response of response.completed; nil and
---an APIError (its `response`: the failed, incomplete or assembled one)
---when the stream ended otherwise.
---@return table?, openai.Error?
function ResponseStream:final() end

---For `for event in stream:iter() do`: a break closes the stream.
function ResponseStream:iter() end

---Aborts the transfer; idempotent.
function ResponseStream:close() end

---@class openai.RawRequest
---@field method string          "GET", "POST", ...
---@field path string            relative to the base URL, starting with "/"
---@field query table<string, any>?
---@field body (table|string)?   a table is sent as JSON, a string as it is
---@field headers table<string, string|false>?
---@field stream boolean?        a stream of the decoded server-sent events
---@field raw boolean?           { status, headers, body } with the body undecoded
---@field timeout number?
---@field max_retries integer?
---@field with_response boolean?

-- Resources: generated by tools/docs.lua from lua/openai/resources/.

---@class openai.Chat
---@field completions openai.ChatCompletions
local Chat = {}

---@class openai.ChatCompletions
---@field messages openai.ChatCompletionsMessages
local ChatCompletions = {}

---Creates a chat completion; with `stream = true` in params, a stream of its chunks.
---POST /chat/completions
---@param params table
---@param opts openai.RequestOptions?
---@return (table|openai.ChatCompletionStream)?, openai.Error?
function ChatCompletions.create(params, opts) end

---Deletes a stored completion: `{ object = "chat.completion.deleted", id, deleted = true }`.
---DELETE /chat/completions/{completion_id}
---@param completion_id string
---@param opts openai.RequestOptions?
---@return table?, openai.Error?
function ChatCompletions.delete(completion_id, opts) end

---A page of stored completions.
---GET /chat/completions
---@param query { after: string?, limit: integer?, order: "asc"|"desc"?, model: string?, metadata: table<string, string>? }?
---@param opts openai.RequestOptions?
---@return openai.Page?, openai.Error?
function ChatCompletions.list(query, opts) end

---A chat completion stored with `store = true`.
---GET /chat/completions/{completion_id}
---@param completion_id string
---@param opts openai.RequestOptions?
---@return table?, openai.Error?
function ChatCompletions.retrieve(completion_id, opts) end

---Sets a stored completion's metadata (`openai.null` clears it).
---POST /chat/completions/{completion_id}
---@param completion_id string
---@param params { metadata: table<string, string>|lightuserdata }
---@param opts openai.RequestOptions?
---@return table?, openai.Error?
function ChatCompletions.update(completion_id, params, opts) end

---@class openai.ChatCompletionsMessages
local ChatCompletionsMessages = {}

---A page of a stored completion's messages.
---GET /chat/completions/{completion_id}/messages
---@param completion_id string
---@param query { after: string?, limit: integer?, order: "asc"|"desc"? }?
---@param opts openai.RequestOptions?
---@return openai.Page?, openai.Error?
function ChatCompletionsMessages.list(completion_id, query, opts) end

---@class openai.Conversations
---@field items openai.ConversationsItems
local Conversations = {}

---Creates a conversation, with up to 20 first items.
---POST /conversations
---@param params { items: table[]?, metadata: table<string, string>? }?
---@param opts openai.RequestOptions?
---@return table?, openai.Error?
function Conversations.create(params, opts) end

---Deletes a conversation (not its items): `{ object = "conversation.deleted", id, deleted = true }`.
---DELETE /conversations/{conversation_id}
---@param conversation_id string
---@param opts openai.RequestOptions?
---@return table?, openai.Error?
function Conversations.delete(conversation_id, opts) end

---A conversation.
---GET /conversations/{conversation_id}
---@param conversation_id string
---@param opts openai.RequestOptions?
---@return table?, openai.Error?
function Conversations.retrieve(conversation_id, opts) end

---Sets a conversation's metadata.
---POST /conversations/{conversation_id}
---@param conversation_id string
---@param params { metadata: table<string, string> }
---@param opts openai.RequestOptions?
---@return table?, openai.Error?
function Conversations.update(conversation_id, params, opts) end

---@class openai.ConversationsItems
local ConversationsItems = {}

---Adds up to 20 items; returns them as a list.
---POST /conversations/{conversation_id}/items
---@param conversation_id string
---@param params { items: table[] }
---@param opts openai.RequestOptions?
---@return table?, openai.Error?
function ConversationsItems.create(conversation_id, params, opts) end

---Deletes an item; returns the conversation.
---DELETE /conversations/{conversation_id}/items/{item_id}
---@param conversation_id string
---@param item_id string
---@param opts openai.RequestOptions?
---@return table?, openai.Error?
function ConversationsItems.delete(conversation_id, item_id, opts) end

---A page of a conversation's items.
---GET /conversations/{conversation_id}/items
---@param conversation_id string
---@param query { after: string?, limit: integer?, order: "asc"|"desc"?, include: string[]? }?
---@param opts openai.RequestOptions?
---@return openai.Page?, openai.Error?
function ConversationsItems.list(conversation_id, query, opts) end

---One item of a conversation.
---GET /conversations/{conversation_id}/items/{item_id}
---@param conversation_id string
---@param item_id string
---@param opts openai.RequestOptions?
---@return table?, openai.Error?
function ConversationsItems.retrieve(conversation_id, item_id, opts) end

---@class openai.Responses
---@field input_items openai.ResponsesInputItems
---@field input_tokens openai.ResponsesInputTokens
local Responses = {}

---Cancels a background response; returns it.
---POST /responses/{response_id}/cancel
---@param response_id string
---@param opts openai.RequestOptions?
---@return table?, openai.Error?
function Responses.cancel(response_id, opts) end

---Compacts a conversation's items into fewer.
---POST /responses/compact
---@param params table
---@param opts openai.RequestOptions?
---@return table?, openai.Error?
function Responses.compact(params, opts) end

---Creates a response; with `stream = true` in params, a stream of its events.
---POST /responses
---@param params table
---@param opts openai.RequestOptions?
---@return (table|openai.ResponseStream)?, openai.Error?
function Responses.create(params, opts) end

---Deletes a stored response; `true` when the API answers with no body.
---DELETE /responses/{response_id}
---@param response_id string
---@param opts openai.RequestOptions?
---@return (table|true)?, openai.Error?
function Responses.delete(response_id, opts) end

---A stored response; with `stream = true` in the query, its events again (after `starting_after`).
---GET /responses/{response_id}
---@param response_id string
---@param query { include: string[]?, stream: boolean?, starting_after: integer?, include_obfuscation: boolean? }?
---@param opts openai.RequestOptions?
---@return (table|openai.ResponseStream)?, openai.Error?
function Responses.retrieve(response_id, query, opts) end

---@class openai.ResponsesInputItems
local ResponsesInputItems = {}

---A page of the items a response was given.
---GET /responses/{response_id}/input_items
---@param response_id string
---@param query { after: string?, limit: integer?, order: "asc"|"desc"?, include: string[]? }?
---@param opts openai.RequestOptions?
---@return openai.Page?, openai.Error?
function ResponsesInputItems.list(response_id, query, opts) end

---@class openai.ResponsesInputTokens
local ResponsesInputTokens = {}

---How many input tokens a request would use.
---POST /responses/input_tokens
---@param params table
---@param opts openai.RequestOptions?
---@return table?, openai.Error?
function ResponsesInputTokens.count(params, opts) end

---@class openai.Client
---@field chat openai.Chat
---@field conversations openai.Conversations
---@field responses openai.Responses
local Client = {}

-- End of the generated resources.

---Releases the client's connections; later calls raise.
function Client:close() end

---Any endpoint, through the same pipeline as the methods (authentication,
---headers, retries, timeouts, errors): the decoded JSON; with `raw`,
---{ status, headers, body }; with `stream`, a stream of decoded events.
---@param request openai.RawRequest
---@return any, openai.Error?, { status: integer, headers: table<string, string> }?
function Client:request(request) end

---@class openai: openai.Client
---@field VERSION string
---@field null lightuserdata   JSON null (== cjson.null, ngx.null)
---@field array_mt table       metatable of decoded arrays
---@field Error table          metatable of error objects
---@field json { encode: fun(value: any): string, decode: fun(text: string, max_depth: integer?, max_values: integer?): any, string? }
local openai = {}

---@param opts openai.ClientOptions?
---@return openai.Client
function openai.new(opts) end

---The text of a Response: every output_text part of every message output
---item, joined (the SDKs' `output_text`).
---@param response table
---@return string
function openai.output_text(response) end

---Marks a table (or a new empty one) as a JSON array.
---@param tbl table?
---@return table
function openai.array(tbl) end

---A JSON integer given by its decimal digits (or an integral number), as the
---decoder gives it on this runtime: an integer on Lua 5.3/5.4; a number
---within 2^53, else an int64_t/uint64_t cdata (LuaJIT) or an openai.int64
---userdata (Lua 5.1/5.2).
---@param digits string|number
---@return integer|number|ffi.cdata*|userdata
function openai.int64(digits) end

---A task: a coroutine whose calls wait by yielding (openai.spawn).
---@class openai.Task
local Task = {}

---Whether it has ended (returned, failed or been cancelled).
---@return boolean
function Task:done() end

---Its function's results. Inside a task it waits by yielding; outside, it
---drives every task until this one ends. An error raised in the task is
---raised again here; a cancelled task gives nil and an APIUserAbortError.
---@return any ...
function Task:result() end

---Aborts it: its transfers are closed and it never resumes. Idempotent.
function Task:cancel() end

---Starts fn(...) as a task (it runs at once until its first wait).
---Inside nginx (where cosockets may be used) the task is a light thread.
---@param fn function
---@param ... any
---@return openai.Task
function openai.spawn(fn, ...) end

---Performs the ready I/O of every task, resumes those whose calls
---completed, waits at most `timeout` seconds (0, the default: never) for
---more; returns how many tasks still run.
---@param timeout number?
---@return integer
function openai.poll(timeout) end

---Spawns fn(...) and polls until it ends; returns its results (raises its
---error).
---@param fn function
---@param ... any
---@return any ...
function openai.run(fn, ...) end

---A file descriptor that becomes readable when poll() has work (an epoll
---set over libcurl's sockets; nil inside nginx, whose own loop drives the I/O).
---@return integer?
function openai.pollfd() end

---Seconds until poll() must be called anyway (0: now), or nil when nothing
---waits on a timer.
---@return number?
function openai.timeout() end

---"r": with pollfd() and timeout(), cqueues' pollable protocol.
---@return string
function openai.events() end

return openai
