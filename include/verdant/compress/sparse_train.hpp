#pragma once
// Sparse training from scratch: random initial masks at given densities, then SET or RigL
// drop-and-grow updates that keep each layer's number of active weights constant.
#include <cstdint>
#include <random>
#include <vector>

#include "verdant/core/tensor.hpp"

namespace verdant::compress {

// A random mask with round(density * numel) ones; weights outside it are zeroed.
Tensor random_mask(const Shape& shape, double density, std::mt19937_64& rng);

// Drops the `fraction` of active weights with the smallest magnitude and grows the same
// number among the inactive ones: at random (SET, `grad` undefined) or by largest gradient
// magnitude (RigL). Grown weights start at zero. Returns the number of weights moved; when
// `changed` is given, it receives the flat positions dropped and grown.
std::int64_t drop_and_grow(Tensor& weight, Tensor& mask, const Tensor& grad, double fraction,
                           std::mt19937_64& rng, std::vector<std::int64_t>* changed = nullptr);

}  // namespace verdant::compress
