#pragma once
// Helpers shared by the op implementations (not installed).
#include <string>

#include "verdant/autograd/ops.hpp"
#include "verdant/core/error.hpp"

namespace verdant::autograd::detail {

struct VariableImplAccess;

inline void require(bool ok, const std::string& msg) {
  if (!ok) throw Error(msg);
}

inline const Tensor& val(const Variable& v, const char* op, const char* what) {
  if (!v.defined()) throw Error(std::string(op) + ": " + what + " is undefined");
  if (v.value().dtype() != DType::f32) throw Error(std::string(op) + ": " + what + " must be f32");
  return v.value();
}

// Elementwise kernels run in parallel only when the work is large enough to pay for waking
// the OpenMP team.
constexpr std::int64_t kParallelMin = 1 << 16;

}  // namespace verdant::autograd::detail
