#pragma once
// One place that decides how many threads Verdant uses (our loops and the BLAS library).

namespace verdant {

// 0 means "all hardware threads". Applies to OpenMP and to the BLAS backend.
void set_num_threads(int n);
int num_threads();

}  // namespace verdant
