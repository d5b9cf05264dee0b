# Paged attention and the KV append (paged_attention.h).
target_sources(ropewire_kernels_cuda PRIVATE)
