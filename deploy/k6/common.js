// Shared by the k6 scripts in this folder: the target, the request every call sends, and the
// gRPC client, connected once per virtual user through server reflection (which resolves every
// service the server lists, as ghz does).
import grpc from 'k6/net/grpc';

export const TARGET = __ENV.TARGET || 'localhost:8080';

// A greedy generation of MAX_TOKENS tokens (ignore_eos: every call costs the same); a distinct
// prompt per iteration keeps the prefix cache from turning calls into cache hits.
export function generateRequest() {
  return {
    prompt: `${__ENV.PROMPT || 'And the LORD said unto'} ${__VU}-${__ITER}`,
    max_tokens: parseInt(__ENV.MAX_TOKENS || '32', 10),
    temperature: 0,
    ignore_eos: true,
  };
}

const client = new grpc.Client();
let connected = false;

export function connectedClient() {
  if (!connected) {
    client.connect(TARGET, { plaintext: true, reflect: true, timeout: '10s' });
    connected = true;
  }
  return client;
}

// Load shape from the environment: VUS concurrent users; ITERATIONS calls in all, or DURATION.
export function loadOptions(thresholds) {
  const options = { vus: parseInt(__ENV.VUS || '4', 10), thresholds };
  if (__ENV.DURATION) {
    options.duration = __ENV.DURATION;
  } else {
    options.iterations = parseInt(__ENV.ITERATIONS || '100', 10);
  }
  return options;
}
