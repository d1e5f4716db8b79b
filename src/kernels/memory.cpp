#include "verdant/kernels/memory.hpp"

#include <malloc.h>

namespace verdant::kernels {

void tune_allocator() {
  static const bool done = [] {
    // Training buffers (at batch 64 the largest, lenet5's conv2 im2col matrix, is 8 MB) come
    // from the heap and stay there for the next step instead of being mmapped and unmapped
    // (page faults) every time. Bigger blocks, like whole datasets, are still mmapped and
    // returned to the system when freed, so they do not inflate the resident size.
    mallopt(M_MMAP_THRESHOLD, 16 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
    return true;
  }();
  (void)done;
}

}  // namespace verdant::kernels
