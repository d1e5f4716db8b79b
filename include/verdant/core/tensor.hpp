#pragma once
// Typed, 64-byte aligned tensor storage with a shape. Contiguous, row-major. Copies share
// storage (like torch.Tensor); clone() makes a deep copy.
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace verdant {

enum class DType : std::uint8_t { f32 = 0, i8 = 1, i32 = 2, u8 = 3 };

std::size_t dtype_size(DType t);
const char* dtype_name(DType t);

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() { return DType::f32; }
template <>
constexpr DType dtype_of<std::int8_t>() { return DType::i8; }
template <>
constexpr DType dtype_of<std::int32_t>() { return DType::i32; }
template <>
constexpr DType dtype_of<std::uint8_t>() { return DType::u8; }

using Shape = std::vector<std::int64_t>;

std::int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);

// A 64-byte aligned block of memory, freed on destruction.
class Storage {
 public:
  static constexpr std::size_t kAlignment = 64;
  explicit Storage(std::size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() { return data_; }
  const void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(Shape shape, DType dtype);  // uninitialized contents

  static Tensor empty(Shape shape, DType dtype = DType::f32) { return Tensor(std::move(shape), dtype); }
  static Tensor zeros(Shape shape, DType dtype = DType::f32);
  static Tensor full(Shape shape, float value);
  static Tensor from(Shape shape, std::initializer_list<float> values);
  static Tensor from(Shape shape, std::span<const float> values);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  std::int64_t dim(int i) const;  // negative i counts from the end
  int ndim() const { return static_cast<int>(shape_.size()); }
  std::int64_t numel() const { return numel_; }
  DType dtype() const { return dtype_; }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel_) * dtype_size(dtype_); }

  template <typename T>
  T* data() {
    check_type(dtype_of<T>());
    return static_cast<T*>(storage_->data());
  }
  template <typename T>
  const T* data() const {
    check_type(dtype_of<T>());
    return static_cast<const T*>(storage_->data());
  }
  void* raw() { return storage_ ? storage_->data() : nullptr; }
  const void* raw() const { return storage_ ? storage_->data() : nullptr; }

  // Same storage, new shape with equal numel; one dimension may be -1.
  Tensor reshape(Shape shape) const;
  Tensor clone() const;
  void fill(float value);
  void zero();
  // Element access for f32 (tests, small tools).
  float item() const;
  float at(std::int64_t flat_index) const { return data<float>()[flat_index]; }
  bool same_storage(const Tensor& other) const { return storage_ == other.storage_; }

 private:
  void check_type(DType want) const;
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  std::int64_t numel_ = 0;
  DType dtype_ = DType::f32;
};

}  // namespace verdant
