// Streaming load from ONE client connection (as ghz and most gRPC clients send it): a few
// workers share one channel and issue greedy GenerateStream calls back to back. Every call is
// recorded: when it started and ended, its status, the replica that answered (the
// ropewire-replica response metadata) and the text it produced.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ropewire/v1/inference.pb.h"

namespace ropewire::testing {

using SteadyTime = std::chrono::steady_clock::time_point;

struct CallRecord {
  int request_index = 0;  // into the request list
  SteadyTime start;
  SteadyTime end;
  int code = -1;  // grpc::StatusCode
  std::string error;
  std::string replica;  // empty when no response metadata arrived
  std::string text;
};

struct LoadPlan {
  std::string target;
  std::vector<v1::GenerateRequest> requests;  // used round-robin
  int concurrency = 6;
  int min_calls = 300;
  // The load keeps going past min_calls until this time (set while it runs, e.g. by a fault
  // injector that wants calls after its fault); never past max_duration.
  std::atomic<int64_t>* run_until_ns = nullptr;  // steady_clock epoch nanoseconds; 0: none
  std::chrono::seconds max_duration{120};
  std::chrono::seconds call_timeout{30};
  // Called from a worker after each call with the number of calls finished so far.
  std::function<void(int finished)> on_call_finished;
};

std::vector<CallRecord> RunStreamLoad(const LoadPlan& plan);

// The greedy requests the deploy tests send: distinct short text prompts, few output tokens.
std::vector<v1::GenerateRequest> GreedyRequests(int count, int max_tokens);

}  // namespace ropewire::testing
