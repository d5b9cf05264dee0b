// Thread control for the CPU kernels. They run on OpenMP (the same runtime oneDNN uses here), so
// GEMMs and hand-written kernels share one pool and never oversubscribe the cores.
#pragma once

namespace ropewire::kernels::cpu {

// Sets the number of threads every CPU kernel uses; <= 0 means one per available core.
void SetNumThreads(int num_threads);

}  // namespace ropewire::kernels::cpu
