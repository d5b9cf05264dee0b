// Prefill attention kernels (attention_prefill.cuh) for bf16 storage: every head dim and position
// variant. One file per storage type and path so that a parallel build compiles them side by side.
#include "kernels/cuda/attention_prefill.cuh"

namespace ropewire::kernels::cuda::attention {

using Storage = __nv_bfloat16;

template absl::Status LaunchPrefill<Storage>(PositionVariant variant, int head_dim,
                                             const PrefillArgs<Storage>& args,
                                             const LaunchShape& shape);

}  // namespace ropewire::kernels::cuda::attention
