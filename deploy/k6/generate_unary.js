// Unary Generate under load, through server reflection. Fails (exit code 99) when more than 1 %
// of calls fail or the p95 latency of a call exceeds MAX_P95_MS.
//   K6_NO_USAGE_REPORT=true k6 run -e TARGET=localhost:8080 deploy/k6/generate_unary.js
import grpc from 'k6/net/grpc';
import { check } from 'k6';
import { Rate } from 'k6/metrics';
import { connectedClient, generateRequest, loadOptions } from './common.js';

const failed = new Rate('ropewire_failed_calls');

export const options = loadOptions({
  ropewire_failed_calls: ['rate<0.01'],
  grpc_req_duration: [`p(95)<${__ENV.MAX_P95_MS || '10000'}`],
});

export default function () {
  const response = connectedClient().invoke('ropewire.v1.Inference/Generate', generateRequest(), {
    timeout: '600s',
  });
  const ok = check(response, {
    'status is OK': (r) => r && r.status === grpc.StatusOK,
    'finished by length': (r) => r && r.message && r.message.finishReason === 'FINISH_REASON_LENGTH',
  });
  failed.add(!ok);
}
