#pragma once
// Seeded random numbers for initialisation and dropout. xoshiro256** with a splitmix64 seed:
// the whole state is four 64-bit words, so it can be saved and restored exactly (--resume).
#include <array>
#include <cstdint>

namespace verdant::autograd {

class Generator {
 public:
  using State = std::array<std::uint64_t, 4>;

  explicit Generator(std::uint64_t seed = 0x5eed) { manual_seed(seed); }
  void manual_seed(std::uint64_t seed);

  std::uint64_t next_u64();
  // Uniform in [0, 1) with 24 random bits (exactly representable as float).
  float uniform();
  // Uniform in [lo, hi).
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  // Standard normal via Box-Muller; uses two uniforms per call, keeps no cached value,
  // so state() is the complete state.
  float normal(float mean = 0.f, float stddev = 1.f);
  // Uniform integer in [0, n), n > 0 (for shuffling).
  std::uint64_t below(std::uint64_t n);

  const State& state() const { return s_; }
  void set_state(const State& s) { s_ = s; }

 private:
  State s_{};
};

// The process-wide generator used when none is passed (like torch::manual_seed).
Generator& default_generator();
inline void manual_seed(std::uint64_t seed) {
  default_generator().manual_seed(seed);
}

}  // namespace verdant::autograd
