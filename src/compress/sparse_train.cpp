#include "verdant/compress/sparse_train.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "verdant/core/error.hpp"

namespace verdant::compress {

Tensor random_mask(const Shape& shape, double density, std::mt19937_64& rng) {
  Tensor m(shape, DType::u8);
  const std::int64_t n = m.numel();
  const auto k = std::clamp<std::int64_t>(std::llround(density * double(n)), 0, n);
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  // Partial Fisher-Yates: the first k positions are a uniform random subset.
  for (std::int64_t i = 0; i < k; ++i) {
    std::uniform_int_distribution<std::int64_t> pick(i, n - 1);
    std::swap(idx[i], idx[pick(rng)]);
  }
  std::memset(m.raw(), 0, m.nbytes());
  for (std::int64_t i = 0; i < k; ++i) m.data<std::uint8_t>()[idx[i]] = 1;
  return m;
}

std::int64_t drop_and_grow(Tensor& weight, Tensor& mask, const Tensor& grad, double fraction,
                           std::mt19937_64& rng, std::vector<std::int64_t>* changed) {
  const std::int64_t n = weight.numel();
  if (mask.numel() != n || (grad.defined() && grad.numel() != n))
    throw Error("drop_and_grow: weight, mask and gradient shapes differ");
  float* w = weight.data<float>();
  std::uint8_t* m = mask.data<std::uint8_t>();
  std::vector<std::int64_t> active, inactive;
  for (std::int64_t i = 0; i < n; ++i) (m[i] ? active : inactive).push_back(i);
  auto k = std::clamp<std::int64_t>(std::llround(fraction * double(active.size())), 0,
                                    static_cast<std::int64_t>(active.size()));
  k = std::min<std::int64_t>(k, static_cast<std::int64_t>(inactive.size()));
  if (k == 0) return 0;

  // Drop: the k active weights closest to zero.
  std::nth_element(
      active.begin(), active.begin() + (k - 1), active.end(),
      [&](std::int64_t a, std::int64_t b) { return std::fabs(w[a]) < std::fabs(w[b]); });
  // Grow among the weights inactive before the drop, so nothing is dropped and regrown at once.
  if (grad.defined()) {
    const float* g = grad.data<float>();
    std::nth_element(
        inactive.begin(), inactive.begin() + (k - 1), inactive.end(),
        [&](std::int64_t a, std::int64_t b) { return std::fabs(g[a]) > std::fabs(g[b]); });
  } else {
    for (std::int64_t i = 0; i < k; ++i) {
      std::uniform_int_distribution<std::int64_t> pick(
          i, static_cast<std::int64_t>(inactive.size()) - 1);
      std::swap(inactive[i], inactive[pick(rng)]);
    }
  }
  for (std::int64_t i = 0; i < k; ++i) {
    m[active[i]] = 0;
    w[active[i]] = 0.0f;
    m[inactive[i]] = 1;
    w[inactive[i]] = 0.0f;  // new connections start at zero
    if (changed != nullptr) changed->insert(changed->end(), {active[i], inactive[i]});
  }
  return k;
}

}  // namespace verdant::compress
