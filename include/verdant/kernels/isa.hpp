#pragma once
// What the training kernels run on this CPU, in words, for run reports and benchmarks: every
// library and clone here dispatches at run time, so the build alone does not say.
#include <string>

namespace verdant::kernels {

// Dense products: "dense oneDNN 2.6 sgemm", or with VERDANT_GEMM=openblas the OpenBLAS build
// and the core kernels it chose, e.g. "dense OpenBLAS 0.3.21 (core Zen, VERDANT_GEMM)".
std::string blas_description();
// Convolutions: oneDNN and the instruction set it dispatches to, or the im2col twin.
std::string conv_description();
// Our own training kernels (4x4 block, CSR, their transposes, direct one-channel convolution):
// the clone the loader chose.
std::string own_kernels_description();
// The three, "; "-separated.
std::string training_kernels();

}  // namespace verdant::kernels
