// The reactors of the two generation methods. Each submits its request to the engine, forwards
// what the request's GenerationStream accumulates, aborts the request in the engine when the
// client goes away, and records the call (CallTracker) once gRPC is done with it.
#pragma once

#include <grpcpp/grpcpp.h>

#include "server/inference_service.h"

namespace ropewire::server {

// Starts a unary Generate for an admitted request; the reactor deletes itself when done.
grpc::ServerUnaryReactor* StartGenerate(grpc::CallbackServerContext* context,
                                        InferenceService::Admission admission,
                                        std::unique_ptr<CallTracker> call,
                                        grpc::ByteBuffer* response);

// Starts a GenerateStream for an admitted request.
grpc::ServerWriteReactor<grpc::ByteBuffer>* StartGenerateStream(
    grpc::CallbackServerContext* context, InferenceService::Admission admission,
    std::unique_ptr<CallTracker> call);

// A GenerateStream that only reports `status` (a refused call).
grpc::ServerWriteReactor<grpc::ByteBuffer>* RejectStream(const grpc::Status& status,
                                                         std::unique_ptr<CallTracker> call);

// Finishes a unary call on the context's default reactor and records it.
grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context,
                                      const grpc::Status& status, CallTracker& call);

}  // namespace ropewire::server
