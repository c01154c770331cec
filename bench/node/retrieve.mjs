// The openai-node anchor of `make bench-concurrency`: the official SDK
// (package `openai`, the version pinned in package-lock.json), IN_FLIGHT
// async workers sharing one client, each awaiting
// client.chat.completions.retrieve(id) in a loop until SECONDS have passed
// (then the last calls finish). A first round of IN_FLIGHT calls, not
// counted, opens the connections and checks the answer. With --fetch, no
// SDK: Node's own fetch and response.json(), what the SDK is built on.
//   node bench/node/retrieve.mjs BASE_URL COMPLETION_ID SECONDS IN_FLIGHT [--fetch]
// Prints "RESULT <calls> <wall s> <process CPU s> <peak RSS kB>".
import OpenAI from 'openai';

const [baseURL, id, secondsArg, inFlightArg, mode] = process.argv.slice(2);
const seconds = Number(secondsArg);
const inFlight = Number(inFlightArg);
if (!baseURL || !id || !(seconds > 0) || !(inFlight > 0) || (mode !== undefined && mode !== '--fetch')) {
  process.stderr.write('usage: node bench/node/retrieve.mjs BASE_URL COMPLETION_ID SECONDS IN_FLIGHT [--fetch]\n');
  process.exit(2);
}

const apiKey = 'sk-bench-0123456789';
const client = new OpenAI({ apiKey, baseURL, maxRetries: 0 });
const url = `${baseURL}/chat/completions/${id}`;
const headers = { Authorization: `Bearer ${apiKey}`, Accept: 'application/json' };
const retrieve = mode === '--fetch'
  ? async () => {
    const response = await fetch(url, { headers });
    if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
    return response.json();
  }
  : () => client.chat.completions.retrieve(id);
const workers = (fn) => Promise.all(Array.from({ length: inFlight }, fn));

await workers(async () => {
  const first = await retrieve();
  if (first?.id !== id) throw new Error(`bad response: id ${first?.id}`);
});

let calls = 0;
const cpu0 = process.cpuUsage();
const wall0 = performance.now();
const deadline = wall0 + seconds * 1000;
await workers(async () => {
  do {
    if ((await retrieve()) == null) throw new Error('no response');
    calls++;
  } while (performance.now() < deadline);
});
const wall = (performance.now() - wall0) / 1000;
const cpu = process.cpuUsage(cpu0);
// maxRSS: kilobytes on Linux.
console.log(`RESULT ${calls} ${wall.toFixed(6)} ${((cpu.user + cpu.system) / 1e6).toFixed(6)} ${process.resourceUsage().maxRSS}`);
