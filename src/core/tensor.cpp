#include "verdant/core/tensor.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "verdant/core/error.hpp"

namespace verdant {

std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32:
    case DType::i32:
      return 4;
    case DType::i8:
    case DType::u8:
      return 1;
  }
  return 1;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "f32";
    case DType::i8:
      return "i8";
    case DType::i32:
      return "i32";
    case DType::u8:
      return "u8";
  }
  return "?";
}

std::int64_t shape_numel(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) {
    if (d < 0) throw Error("negative dimension in shape " + shape_str(s));
    if (__builtin_mul_overflow(n, d, &n))
      throw Error("shape " + shape_str(s) + " has more elements than fit in 64 bits");
  }
  return n;
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

Storage::Storage(std::size_t bytes) : bytes_(bytes) {
  // aligned_alloc needs a size that is a multiple of the alignment, and never zero.
  std::size_t rounded =
      std::max<std::size_t>(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
  data_ = std::aligned_alloc(kAlignment, rounded);
  if (!data_) throw std::bad_alloc();
}

Storage::~Storage() {
  std::free(data_);
}

Tensor::Tensor(Shape shape, DType dtype)
    : shape_(std::move(shape)), numel_(shape_numel(shape_)), dtype_(dtype) {
  storage_ = std::make_shared<Storage>(static_cast<std::size_t>(numel_) * dtype_size(dtype_));
}

Tensor Tensor::zeros(Shape shape, DType dtype) {
  Tensor t(std::move(shape), dtype);
  t.zero();
  return t;
}

Tensor Tensor::full(Shape shape, float value) {
  Tensor t(std::move(shape), DType::f32);
  t.fill(value);
  return t;
}

Tensor Tensor::from(Shape shape, std::initializer_list<float> values) {
  return from(std::move(shape), std::span<const float>(values.begin(), values.size()));
}

Tensor Tensor::from(Shape shape, std::span<const float> values) {
  Tensor t(std::move(shape), DType::f32);
  if (static_cast<std::int64_t>(values.size()) != t.numel())
    throw Error("Tensor::from: " + std::to_string(values.size()) + " values for shape " +
                shape_str(t.shape()));
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

std::int64_t Tensor::dim(int i) const {
  int n = ndim();
  int j = i < 0 ? i + n : i;
  if (j < 0 || j >= n)
    throw Error("dimension " + std::to_string(i) + " out of range for shape " + shape_str(shape_));
  return shape_[j];
}

Tensor Tensor::reshape(Shape shape) const {
  int infer = -1;
  std::int64_t known = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) throw Error("reshape: more than one -1 in " + shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel_ % known != 0)
      throw Error("reshape: cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
    shape[infer] = numel_ / known;
  }
  if (shape_numel(shape) != numel_)
    throw Error("reshape: cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::clone() const {
  if (!defined()) return {};
  Tensor t(shape_, dtype_);
  std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

void Tensor::fill(float value) {
  float* p = data<float>();
  std::fill(p, p + numel_, value);
}

void Tensor::zero() {
  if (storage_) std::memset(storage_->data(), 0, nbytes());
}

float Tensor::item() const {
  if (numel_ != 1) throw Error("item() needs one element, shape is " + shape_str(shape_));
  return data<float>()[0];
}

void Tensor::check_type(DType want) const {
  if (!storage_) throw Error("access to an undefined tensor");
  if (want != dtype_)
    throw Error(std::string("tensor holds ") + dtype_name(dtype_) + ", accessed as " +
                dtype_name(want));
}

}  // namespace verdant
