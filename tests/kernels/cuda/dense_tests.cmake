# Tests of the CUDA dense operations against kernels/cpu.
