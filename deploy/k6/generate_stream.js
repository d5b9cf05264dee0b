// Server-streaming GenerateStream under load, through server reflection, with what ghz cannot
// measure: time to first token (ropewire_ttft) and the whole generation (ropewire_e2e). Fails
// (exit code 99) when more than 1 % of calls fail or the p95 TTFT exceeds MAX_TTFT_P95_MS.
//   K6_NO_USAGE_REPORT=true k6 run -e TARGET=localhost:8080 deploy/k6/generate_stream.js
import grpc from 'k6/net/grpc';
import { Rate, Trend } from 'k6/metrics';
import { connectedClient, generateRequest, loadOptions } from './common.js';

const failed = new Rate('ropewire_failed_calls');
const ttft = new Trend('ropewire_ttft', true);
const e2e = new Trend('ropewire_e2e', true);
const tokens = new Trend('ropewire_output_tokens');

export const options = loadOptions({
  ropewire_failed_calls: ['rate<0.01'],
  ropewire_ttft: [`p(95)<${__ENV.MAX_TTFT_P95_MS || '5000'}`],
});

export default function () {
  const request = generateRequest();
  const stream = new grpc.Stream(connectedClient(), 'ropewire.v1.Inference/GenerateStream', {
    timeout: '600s',
  });
  const started = Date.now();
  let first = 0;
  let received = 0;
  let finish = '';
  let error = null;
  stream.on('data', (message) => {
    if (first === 0 && message.tokenIds && message.tokenIds.length > 0) first = Date.now();
    received += message.tokenIds ? message.tokenIds.length : 0;
    if (message.finishReason && message.finishReason !== 'FINISH_REASON_UNSPECIFIED') {
      finish = message.finishReason;
    }
  });
  stream.on('error', (e) => {
    error = e;
  });
  stream.on('end', () => {
    const ok = error === null && finish === 'FINISH_REASON_LENGTH' && received === request.max_tokens;
    failed.add(!ok);
    if (!ok) console.error(`call failed: ${error ? error.message : `finish ${finish}, ${received} tokens`}`);
    if (first > 0) ttft.add(first - started);
    e2e.add(Date.now() - started);
    tokens.add(received);
  });
  stream.write(request);
  stream.end();
}
