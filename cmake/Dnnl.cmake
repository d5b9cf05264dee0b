# oneDNN (Debian: libdnnl-dev) provides the CPU GEMM (dnnl_sgemm). It ships no CMake package in
# bookworm, so it is found by hand and wrapped in an imported target.
find_path(DNNL_INCLUDE_DIR NAMES dnnl.h PATH_SUFFIXES oneapi/dnnl)
find_library(DNNL_LIBRARY NAMES dnnl)
if(NOT DNNL_INCLUDE_DIR OR NOT DNNL_LIBRARY)
  message(FATAL_ERROR "oneDNN not found: install libdnnl-dev (scripts/setup.sh does)")
endif()
add_library(ropewire::dnnl UNKNOWN IMPORTED)
set_target_properties(ropewire::dnnl PROPERTIES
  IMPORTED_LOCATION "${DNNL_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${DNNL_INCLUDE_DIR}")
