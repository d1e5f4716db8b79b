#include "verdant/sweep/pareto.hpp"

#include <algorithm>
#include <numeric>

namespace verdant::sweep {

std::vector<std::size_t> pareto_front(std::span<const TradeOff> p) {
  // Sorted by cost, then accuracy descending: a point is on the front when it is more accurate
  // than every cheaper point, or exactly equal to the best so far.
  std::vector<std::size_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (p[a].cost != p[b].cost) return p[a].cost < p[b].cost;
    return p[a].accuracy > p[b].accuracy;
  });
  std::vector<std::size_t> front;
  bool any = false;
  double best_acc = 0, best_cost = 0;
  for (std::size_t i : order) {
    const TradeOff& t = p[i];
    if (!any || t.accuracy > best_acc) {
      front.push_back(i);
      best_acc = t.accuracy;
      best_cost = t.cost;
      any = true;
    } else if (t.accuracy == best_acc && t.cost == best_cost) {
      front.push_back(i);  // a tie with a front point
    }
  }
  std::sort(front.begin(), front.end());
  return front;
}

std::optional<std::size_t> cheapest_within(std::span<const TradeOff> p, double floor) {
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (!(p[i].accuracy >= floor)) continue;
    if (!best || p[i].cost < p[*best].cost ||
        (p[i].cost == p[*best].cost && p[i].accuracy > p[*best].accuracy))
      best = i;
  }
  return best;
}

}  // namespace verdant::sweep
