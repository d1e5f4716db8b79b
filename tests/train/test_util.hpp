#pragma once
// Helpers shared by the train tests: temp dirs and a small synthetic image set that a tiny
// network learns in a few steps.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "verdant/data/dataset.hpp"
#include "verdant/data/idx.hpp"

namespace verdant::test {

class TempDir {
 public:
  TempDir() {
    auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            (std::string("verdant_train_") + info->test_suite_name() + "_" + info->name() + "_" +
             std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// n images of side x side bytes: class k (of 10) lights every pixel whose flat index is k
// modulo 10, over deterministic pseudo-random noise.
inline data::IdxArray synthetic_images(int n, int side, std::uint32_t seed,
                                       data::IdxArray* labels) {
  data::IdxArray img{{n, side, side}, {}};
  labels->dims = {n};
  labels->bytes.clear();
  std::uint32_t s = seed * 2654435761u + 1;
  for (int i = 0; i < n; ++i) {
    int k = (i * 7 + static_cast<int>(seed)) % 10;
    labels->bytes.push_back(static_cast<std::uint8_t>(k));
    for (int r = 0; r < side; ++r)
      for (int c = 0; c < side; ++c) {
        s = s * 1664525u + 1013904223u;
        int noise = static_cast<int>(s >> 26);  // 0..63
        int band = (r * side + c) % 10 == k ? 160 : 0;
        img.bytes.push_back(static_cast<std::uint8_t>(band + noise));
      }
  }
  return img;
}

inline data::ImageDataset synthetic_dataset(int n, int side = 8, std::uint32_t seed = 1) {
  data::IdxArray labels;
  data::IdxArray img = synthetic_images(n, side, seed, &labels);
  return data::ImageDataset(img.dims, img.bytes, labels.bytes, 10, 0.2f, 0.3f);
}

// A directory laid out like Fashion-MNIST (28x28, gzip), with synthetic images.
inline void write_fake_fashion_mnist(const std::filesystem::path& dir, int n_train, int n_test) {
  std::filesystem::create_directories(dir);
  data::IdxArray labels;
  data::IdxArray img = synthetic_images(n_train, 28, 3, &labels);
  data::write_idx(dir / "train-images-idx3-ubyte.gz", img, true);
  data::write_idx(dir / "train-labels-idx1-ubyte.gz", labels, true);
  img = synthetic_images(n_test, 28, 4, &labels);
  data::write_idx(dir / "t10k-images-idx3-ubyte.gz", img, true);
  data::write_idx(dir / "t10k-labels-idx1-ubyte.gz", labels, true);
}

}  // namespace verdant::test
