// Shared by the CUDA tests: they run where a GPU is visible and skip, saying so, elsewhere.
#pragma once

#include "gtest/gtest.h"
#include "kernels/cuda/device.h"

#define ROPEWIRE_SKIP_WITHOUT_GPU()                                                     \
  do {                                                                                  \
    if (::ropewire::kernels::cuda::DeviceCount() == 0) {                                \
      GTEST_SKIP() << "no CUDA device visible: CUDA kernels compiled but not run here"; \
    }                                                                                   \
  } while (0)
