#include "verdant/compress/sparse_train.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
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

namespace {

// |v| as an integer of the same order, from 1 (+-0) up; NaN is 0, below everything.
inline std::uint32_t magnitude_key(float v) {
  std::uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  u &= 0x7fffffffu;
  return u > 0x7f800000u ? 0 : u + 1;
}
constexpr std::uint32_t kMaxMagnitudeKey = 0x7f800001u;  // infinity's

// The k positions i in [0, n) with eligible(i) whose key(i) is largest, ascending; among equal
// keys the lower positions (so a NaN, keyed 0, only when nothing else is left). The threshold comes
// from a radix pass: a histogram of the keys' top bits finds the bucket holding the k-th largest,
// and only that bucket is sorted out. A layer has hundreds of thousands of candidates, and RigL
// selects among them twice per update.
template <typename Eligible, typename Key>
std::vector<std::int64_t> largest(std::int64_t n, std::int64_t k, Eligible eligible, Key key) {
  constexpr int kShift = 19;  // keys < 2^31: 4096 buckets of 1/16 of an octave each
  std::vector<std::int64_t> count((kMaxMagnitudeKey >> kShift) + 1, 0);
  for (std::int64_t i = 0; i < n; ++i)
    if (eligible(i)) ++count[key(i) >> kShift];
  std::size_t bucket = count.size();
  std::int64_t above = 0;  // keys in the buckets above `bucket`
  while (bucket > 0 && above + count[bucket - 1] < k) above += count[--bucket];
  --bucket;  // holds the k-th largest
  std::vector<std::uint32_t> in_bucket;
  in_bucket.reserve(static_cast<std::size_t>(count[bucket]));
  for (std::int64_t i = 0; i < n; ++i) {
    if (!eligible(i)) continue;
    const std::uint32_t v = key(i);
    if ((v >> kShift) == bucket) in_bucket.push_back(v);
  }
  const auto need = static_cast<std::size_t>(k - above);
  std::nth_element(in_bucket.begin(), in_bucket.begin() + (need - 1), in_bucket.end(),
                   std::greater<std::uint32_t>());
  const std::uint32_t threshold = in_bucket[need - 1];
  std::int64_t ties = k - above;  // how many keys equal to the threshold are taken
  for (std::uint32_t v : in_bucket) ties -= v > threshold;
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(k));
  for (std::int64_t i = 0; i < n && static_cast<std::int64_t>(out.size()) < k; ++i) {
    if (!eligible(i)) continue;
    const std::uint32_t v = key(i);
    if (v > threshold || (v == threshold && ties-- > 0)) out.push_back(i);
  }
  return out;
}

}  // namespace

std::int64_t drop_and_grow(Tensor& weight, Tensor& mask, const Tensor& grad, double fraction,
                           std::mt19937_64& rng, std::vector<std::int64_t>* changed) {
  const std::int64_t n = weight.numel();
  if (mask.numel() != n || (grad.defined() && grad.numel() != n))
    throw Error("drop_and_grow: weight, mask and gradient shapes differ");
  float* w = weight.data<float>();
  std::uint8_t* m = mask.data<std::uint8_t>();
  const auto active =
      static_cast<std::int64_t>(std::count_if(m, m + n, [](std::uint8_t v) { return v != 0; }));
  auto k = std::clamp<std::int64_t>(std::llround(fraction * double(active)), 0, active);
  k = std::min<std::int64_t>(k, n - active);
  if (k == 0) return 0;

  // Drop: the k active weights closest to zero.
  const auto is_active = [m](std::int64_t i) { return m[i] != 0; };
  const std::vector<std::int64_t> drop = largest(n, k, is_active, [w](std::int64_t i) {
    const std::uint32_t magnitude = magnitude_key(w[i]);
    return magnitude == 0 ? 0 : kMaxMagnitudeKey + 1 - magnitude;  // smallest first, NaN last
  });
  // Grow among the weights inactive before the drop, so nothing is dropped and regrown at once.
  std::vector<std::int64_t> grow;
  if (grad.defined()) {
    const float* g = grad.data<float>();
    grow = largest(
        n, k, [m](std::int64_t i) { return m[i] == 0; },
        [g](std::int64_t i) { return magnitude_key(g[i]); });
  } else {
    std::vector<std::int64_t> inactive;
    inactive.reserve(static_cast<std::size_t>(n - active));
    for (std::int64_t i = 0; i < n; ++i)
      if (!is_active(i)) inactive.push_back(i);
    for (std::int64_t i = 0; i < k; ++i) {
      std::uniform_int_distribution<std::int64_t> pick(
          i, static_cast<std::int64_t>(inactive.size()) - 1);
      std::swap(inactive[i], inactive[pick(rng)]);
    }
    grow.assign(inactive.begin(), inactive.begin() + k);
  }
  for (std::int64_t i = 0; i < k; ++i) {
    m[drop[i]] = 0;
    w[drop[i]] = 0.0f;
    m[grow[i]] = 1;
    w[grow[i]] = 0.0f;  // new connections start at zero
    if (changed != nullptr) changed->insert(changed->end(), {drop[i], grow[i]});
  }
  return k;
}

}  // namespace verdant::compress
