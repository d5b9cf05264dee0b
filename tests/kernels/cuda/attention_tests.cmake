# Tests of the CUDA paged attention against kernels/cpu.
ropewire_add_test(kernels_cuda_attention_test
  SOURCES cuda/attention_test.cc
  LIBS ropewire_kernels_cuda ropewire_kernels_cpu)
