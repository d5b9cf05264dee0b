#include "kernels/cpu/threading.h"

#include <omp.h>
#include <thread>

namespace ropewire::kernels::cpu {

void SetNumThreads(int num_threads) {
  if (num_threads <= 0) num_threads = omp_get_num_procs();
  if (num_threads <= 0) num_threads = static_cast<int>(std::thread::hardware_concurrency());
  omp_set_num_threads(num_threads > 0 ? num_threads : 1);
}

}  // namespace ropewire::kernels::cpu
