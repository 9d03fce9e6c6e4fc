#include "vigil/common.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace vigil {

void keep_freed_memory() {
#if defined(__GLIBC__)
  // Fixed thresholds also stop glibc from adapting them. Blocks up to 64 MiB come from the heap (a
  // detector pass over a tile of a 4000x3000 photo needs less), and the heap is trimmed only when 512 MiB
  // lie free at its top, which the 300 MB peak never reaches.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
}

}  // namespace vigil
