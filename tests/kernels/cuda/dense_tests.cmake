# Tests of the CUDA dense operations against kernels/cpu.
ropewire_add_test(kernels_cuda_dense_test
  SOURCES cuda/dense_test.cc
  LIBS ropewire_kernels_cuda ropewire_kernels_cpu)
