#pragma once
// Allocator tuning: training frees and re-allocates the same big buffers every step. Making
// glibc keep them (no mmap/munmap per buffer, no trimming) avoids page faults each step.

namespace verdant::kernels {

// Idempotent and cheap after the first call; the autograd layer calls it on first use.
void tune_allocator();

}  // namespace verdant::kernels
