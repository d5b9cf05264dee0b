# Dense operations of the forward pass: conversions, embeddings, norms, activations, GEMM.
target_sources(ropewire_kernels_cuda PRIVATE)
