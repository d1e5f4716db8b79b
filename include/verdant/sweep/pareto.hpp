#pragma once
// The accuracy/cost trade-off: the non-dominated points (higher accuracy, lower cost) and the
// pick of the cheapest candidate within an accuracy budget.
#include <cstddef>
#include <optional>
#include <span>
#include <vector>

namespace verdant::sweep {

struct TradeOff {
  double accuracy = 0;  // higher is better
  double cost = 0;      // lower is better
};

// Indices (ascending) of the points no other point dominates: none has accuracy >= and
// cost <= with at least one strictly better. Equal points do not dominate each other, so
// ties are all on the front.
std::vector<std::size_t> pareto_front(std::span<const TradeOff> points);

// The index of the least cost among points with accuracy >= floor (ties: the more accurate,
// then the first); nullopt when none qualifies.
std::optional<std::size_t> cheapest_within(std::span<const TradeOff> points, double floor);

}  // namespace verdant::sweep
