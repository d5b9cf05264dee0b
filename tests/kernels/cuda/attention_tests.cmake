# Tests of the CUDA paged attention against kernels/cpu.
