#pragma once
// Magnitude pruning on plain tensors. A mask is a u8 tensor of the weight's shape (1 keeps,
// 0 prunes); apply_mask() zeroes the pruned weights and is called after every optimizer step.
#include <cstdint>
#include <vector>

#include "verdant/compress/recipe.hpp"
#include "verdant/core/tensor.hpp"

namespace verdant::compress {

Tensor ones_mask(const Shape& shape);
void apply_mask(Tensor& weight, const Tensor& mask);
std::int64_t count_nonzero(const Tensor& t);  // f32 or u8
double sparsity_of(const Tensor& t);          // fraction of exact zeros

// Unstructured magnitude pruning to `sparsity` of each layer (scope layer) or of all layers
// together (scope global). Masks only ever lose ones: already pruned weights stay pruned.
void magnitude_prune(const std::vector<Tensor>& weights, std::vector<Tensor>& masks,
                     double sparsity, PruneScope scope);

// Structured pruning: for each layer, prunes the fraction `sparsity` of its rows (neurons of
// a Linear [out, in], output channels of a Conv2d [out, in, kh, kw]) with the smallest L1/L2
// norm. Pruned rows stay pruned.
void structured_prune(const std::vector<Tensor>& weights, std::vector<Tensor>& masks,
                      double sparsity, Norm norm);

// Block pruning: each weight is viewed as a matrix [out, in*kh*kw] and cut into blocks of
// `block_rows` consecutive rows x `block_cols` consecutive columns (smaller at the ragged
// edges). Whole blocks with the smallest norm are pruned until `sparsity` of the weights (of
// each layer, or of all layers together for scope global) is pruned, to the nearest block.
// Blocks are ranked by their norm per weight (L2: root mean square, L1: mean magnitude), which
// is the plain norm's order for equal blocks and does not single out the smaller edge blocks.
// Masks only ever lose ones: a pruned block stays pruned.
void block_prune(const std::vector<Tensor>& weights, std::vector<Tensor>& masks, double sparsity,
                 PruneScope scope, Norm norm, std::int64_t block_rows, std::int64_t block_cols);

// Indices of the rows of `mask` that still have a one (kept neurons/channels).
std::vector<std::int64_t> kept_rows(const Tensor& mask);

// Physical removal for a chain of layers where layer i's output feeds layer i+1's input.
// Keeps rows `keep` of `weight` (and `bias`), and the matching input columns of the next
// layer: `next_weight` has shape [out, in, ...] with in = rows_of_this * `group` (group =
// spatial size h*w when a flatten sits between a conv and a linear, 1 otherwise).
Tensor take_rows(const Tensor& weight, const std::vector<std::int64_t>& keep);
Tensor take_input_columns(const Tensor& next_weight, const std::vector<std::int64_t>& keep,
                          std::int64_t group);

}  // namespace verdant::compress
