# Paged attention and the KV append (paged_attention.h). The kernels are compiled per storage type
# and path (decode, prefill) in separate files so that a parallel build spreads them over cores.
target_sources(ropewire_kernels_cuda PRIVATE
  paged_attention.cu
  attention_tables.cu
  attention_decode_bf16.cu
  attention_decode_fp16.cu
  attention_prefill_bf16.cu
  attention_prefill_fp16.cu
  kv_append.cu
)
# RopeTableSet and T5RelativePositionBucket: the host side of the position data.
target_link_libraries(ropewire_kernels_cuda PUBLIC ropewire_kernels_common)
