// Decode attention kernels (attention_decode.cuh) for fp16 storage: every head dim and position
// variant. One file per storage type and path so that a parallel build compiles them side by side.
#include "kernels/cuda/attention_decode.cuh"

namespace ropewire::kernels::cuda::attention {

using Storage = __half;

template absl::Status LaunchDecode<Storage>(PositionVariant variant, int head_dim,
                                            const DecodeArgs<Storage>& args,
                                            const LaunchShape& shape);
template absl::Status DecodeBlocksPerSm<Storage>(PositionVariant variant, int head_dim,
                                                 const LaunchShape& shape, int* blocks);
template absl::Status LaunchCombine<Storage>(const CombineArgs<Storage>& args,
                                             const LaunchShape& shape);

}  // namespace ropewire::kernels::cuda::attention
