# Dense operations of the forward pass: conversions, embeddings, norms, activations, GEMM.
target_sources(ropewire_kernels_cuda PRIVATE
  convert.cu
  elementwise.cu
  embedding.cu
  logits.cu
  gemm.cc
)
