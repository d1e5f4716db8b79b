#include "verdant/compress/prune.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <tuple>

#include "verdant/core/error.hpp"

namespace verdant::compress {

Tensor ones_mask(const Shape& shape) {
  Tensor m(shape, DType::u8);
  std::memset(m.raw(), 1, m.nbytes());
  return m;
}

void apply_mask(Tensor& weight, const Tensor& mask) {
  if (weight.numel() != mask.numel()) throw Error("apply_mask: mask shape differs from weight");
  float* w = weight.data<float>();
  const std::uint8_t* m = mask.data<std::uint8_t>();
  const std::int64_t n = weight.numel();
  for (std::int64_t i = 0; i < n; ++i) w[i] = m[i] ? w[i] : 0.0f;
}

std::int64_t count_nonzero(const Tensor& t) {
  std::int64_t nz = 0;
  if (t.dtype() == DType::u8) {
    const auto* p = t.data<std::uint8_t>();
    for (std::int64_t i = 0; i < t.numel(); ++i) nz += p[i] != 0;
  } else {
    const auto* p = t.data<float>();
    for (std::int64_t i = 0; i < t.numel(); ++i) nz += p[i] != 0.0f;
  }
  return nz;
}

double sparsity_of(const Tensor& t) {
  return t.numel() == 0 ? 0.0 : 1.0 - double(count_nonzero(t)) / double(t.numel());
}

namespace {
// Prunes the `k` lowest-scoring entries among (layer, index) pairs; masked entries count as
// already pruned (score -1) so that a rising sparsity never revives a weight.
struct Entry {
  float score;
  std::uint32_t layer;
  std::uint32_t index;
};

void prune_lowest(std::vector<Entry>& entries, std::int64_t k, std::vector<Tensor>& masks) {
  k = std::clamp<std::int64_t>(k, 0, static_cast<std::int64_t>(entries.size()));
  if (k == 0) return;
  std::nth_element(entries.begin(), entries.begin() + (k - 1), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.score < b.score; });
  for (std::int64_t i = 0; i < k; ++i)
    masks[entries[i].layer].data<std::uint8_t>()[entries[i].index] = 0;
}

void append_scores(const Tensor& w, const Tensor& m, std::uint32_t layer, std::vector<Entry>& out) {
  const float* wp = w.data<float>();
  const std::uint8_t* mp = m.data<std::uint8_t>();
  for (std::int64_t i = 0; i < w.numel(); ++i)
    out.push_back({mp[i] ? std::fabs(wp[i]) : -1.0f, layer, static_cast<std::uint32_t>(i)});
}

void check_pairs(const std::vector<Tensor>& weights, const std::vector<Tensor>& masks) {
  if (weights.size() != masks.size()) throw Error("pruning: one mask per weight is needed");
  for (std::size_t i = 0; i < weights.size(); ++i)
    if (weights[i].numel() != masks[i].numel())
      throw Error("pruning: mask shape differs from weight");
}
}  // namespace

void magnitude_prune(const std::vector<Tensor>& weights, std::vector<Tensor>& masks,
                     double sparsity, PruneScope scope) {
  check_pairs(weights, masks);
  std::vector<Entry> entries;
  if (scope == PruneScope::global) {
    std::int64_t total = 0;
    for (const auto& w : weights) total += w.numel();
    entries.reserve(static_cast<std::size_t>(total));
    for (std::size_t l = 0; l < weights.size(); ++l)
      append_scores(weights[l], masks[l], static_cast<std::uint32_t>(l), entries);
    prune_lowest(entries, std::llround(sparsity * double(total)), masks);
    return;
  }
  for (std::size_t l = 0; l < weights.size(); ++l) {
    entries.clear();
    append_scores(weights[l], masks[l], static_cast<std::uint32_t>(l), entries);
    prune_lowest(entries, std::llround(sparsity * double(weights[l].numel())), masks);
  }
}

void structured_prune(const std::vector<Tensor>& weights, std::vector<Tensor>& masks,
                      double sparsity, Norm norm) {
  check_pairs(weights, masks);
  for (std::size_t l = 0; l < weights.size(); ++l) {
    const Tensor& w = weights[l];
    const std::int64_t rows = w.dim(0), cols = w.numel() / rows;
    const float* wp = w.data<float>();
    std::uint8_t* mp = masks[l].data<std::uint8_t>();
    std::vector<std::pair<double, std::int64_t>> score(static_cast<std::size_t>(rows));
    for (std::int64_t r = 0; r < rows; ++r) {
      double s = 0;
      bool alive = false;
      for (std::int64_t c = 0; c < cols; ++c) {
        const double v = wp[r * cols + c];
        s += norm == Norm::l1 ? std::fabs(v) : v * v;
        alive = alive || mp[r * cols + c];
      }
      score[r] = {alive ? s : -1.0, r};
    }
    const auto k = std::clamp<std::int64_t>(std::llround(sparsity * double(rows)), 0, rows);
    std::sort(score.begin(), score.end());
    for (std::int64_t i = 0; i < k; ++i)
      std::memset(mp + score[i].second * cols, 0, static_cast<std::size_t>(cols));
  }
}

namespace {
// One block of a weight viewed as [rows, cols]: its score (norm per weight) and how many of its
// weights are still unpruned.
struct Block {
  double score;
  std::uint32_t layer;
  std::int64_t r0, c0;
  std::int64_t live;
};

// Appends the blocks of layer `l` that still have a live weight; returns the layer's pruned count.
std::int64_t append_blocks(const Tensor& w, const Tensor& m, std::uint32_t layer, Norm norm,
                           std::int64_t br, std::int64_t bc, std::vector<Block>& out) {
  const std::int64_t rows = w.dim(0), cols = w.numel() / rows;
  const float* wp = w.data<float>();
  const std::uint8_t* mp = m.data<std::uint8_t>();
  std::int64_t dead = 0;
  for (std::int64_t r0 = 0; r0 < rows; r0 += br) {
    const std::int64_t r1 = std::min(r0 + br, rows);
    for (std::int64_t c0 = 0; c0 < cols; c0 += bc) {
      const std::int64_t c1 = std::min(c0 + bc, cols);
      double sum = 0;
      std::int64_t live = 0;
      for (std::int64_t r = r0; r < r1; ++r)
        for (std::int64_t c = c0; c < c1; ++c) {
          if (!mp[r * cols + c]) continue;
          const double v = wp[r * cols + c];
          sum += norm == Norm::l1 ? std::fabs(v) : v * v;
          ++live;
        }
      const double size = double((r1 - r0) * (c1 - c0));
      dead += (r1 - r0) * (c1 - c0) - live;
      if (live == 0) continue;
      out.push_back({norm == Norm::l1 ? sum / size : std::sqrt(sum / size), layer, r0, c0, live});
    }
  }
  return dead;
}

// Prunes the lowest-scoring blocks until the pruned count is as close to `target` as whole
// blocks allow (never reviving anything).
void prune_blocks(std::vector<Block>& blocks, std::int64_t dead, std::int64_t target,
                  const std::vector<Tensor>& weights, std::vector<Tensor>& masks, std::int64_t br,
                  std::int64_t bc) {
  std::sort(blocks.begin(), blocks.end(), [](const Block& a, const Block& b) {
    return std::tie(a.score, a.layer, a.r0, a.c0) < std::tie(b.score, b.layer, b.r0, b.c0);
  });
  std::int64_t pruned = dead;
  for (const Block& b : blocks) {
    // Stop where one more block would land further from the target than we are now.
    if (2 * pruned + b.live >= 2 * target) break;
    const Tensor& w = weights[b.layer];
    const std::int64_t rows = w.dim(0), cols = w.numel() / rows;
    std::uint8_t* mp = masks[b.layer].data<std::uint8_t>();
    for (std::int64_t r = b.r0; r < std::min(b.r0 + br, rows); ++r)
      for (std::int64_t c = b.c0; c < std::min(b.c0 + bc, cols); ++c) mp[r * cols + c] = 0;
    pruned += b.live;
  }
}
}  // namespace

void block_prune(const std::vector<Tensor>& weights, std::vector<Tensor>& masks, double sparsity,
                 PruneScope scope, Norm norm, std::int64_t block_rows, std::int64_t block_cols) {
  check_pairs(weights, masks);
  if (block_rows < 1 || block_cols < 1) throw Error("block pruning: block sizes must be positive");
  for (const auto& w : weights)
    if (w.ndim() < 1 || w.dim(0) == 0) throw Error("block pruning: a weight has no rows");
  std::vector<Block> blocks;
  if (scope == PruneScope::global) {
    std::int64_t total = 0, dead = 0;
    for (std::size_t l = 0; l < weights.size(); ++l) {
      total += weights[l].numel();
      dead += append_blocks(weights[l], masks[l], static_cast<std::uint32_t>(l), norm, block_rows,
                            block_cols, blocks);
    }
    prune_blocks(blocks, dead, std::llround(sparsity * double(total)), weights, masks, block_rows,
                 block_cols);
    return;
  }
  for (std::size_t l = 0; l < weights.size(); ++l) {
    blocks.clear();
    const std::int64_t dead = append_blocks(weights[l], masks[l], static_cast<std::uint32_t>(l),
                                            norm, block_rows, block_cols, blocks);
    prune_blocks(blocks, dead, std::llround(sparsity * double(weights[l].numel())), weights, masks,
                 block_rows, block_cols);
  }
}

std::vector<std::int64_t> kept_rows(const Tensor& mask) {
  const std::int64_t rows = mask.dim(0), cols = mask.numel() / rows;
  const std::uint8_t* m = mask.data<std::uint8_t>();
  std::vector<std::int64_t> keep;
  for (std::int64_t r = 0; r < rows; ++r)
    if (std::any_of(m + r * cols, m + (r + 1) * cols, [](std::uint8_t v) { return v != 0; }))
      keep.push_back(r);
  return keep;
}

Tensor take_rows(const Tensor& weight, const std::vector<std::int64_t>& keep) {
  Shape shape = weight.shape();
  const std::int64_t cols = weight.numel() / shape[0];
  shape[0] = static_cast<std::int64_t>(keep.size());
  Tensor out(shape, DType::f32);
  for (std::size_t i = 0; i < keep.size(); ++i)
    std::memcpy(out.data<float>() + static_cast<std::int64_t>(i) * cols,
                weight.data<float>() + keep[i] * cols, static_cast<std::size_t>(cols) * 4);
  return out;
}

Tensor take_input_columns(const Tensor& next_weight, const std::vector<std::int64_t>& keep,
                          std::int64_t group) {
  Shape shape = next_weight.shape();
  const std::int64_t out_rows = shape[0];
  const std::int64_t in = shape[1];
  std::int64_t inner = 1;  // kernel elements per input channel (conv) or 1 (linear)
  for (std::size_t d = 2; d < shape.size(); ++d) inner *= shape[d];
  if (in % group != 0) throw Error("structured pruning: layer inputs do not match the group");
  shape[1] = static_cast<std::int64_t>(keep.size()) * group;
  Tensor out(shape, DType::f32);
  const float* src = next_weight.data<float>();
  float* dst = out.data<float>();
  const std::int64_t block = group * inner;  // contiguous values belonging to one input row
  for (std::int64_t o = 0; o < out_rows; ++o)
    for (std::size_t i = 0; i < keep.size(); ++i)
      std::memcpy(dst + (o * shape[1] + static_cast<std::int64_t>(i) * group) * inner,
                  src + (o * in + keep[i] * group) * inner, static_cast<std::size_t>(block) * 4);
  return out;
}

}  // namespace verdant::compress
