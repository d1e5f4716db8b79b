#include "verdant/compress/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace verdant::compress {

double cubic_sparsity(double s_i, double s_f, double t, double t0, double span) {
  if (span <= 0) return t >= t0 ? s_f : s_i;
  const double progress = std::clamp((t - t0) / span, 0.0, 1.0);
  const double remaining = 1.0 - progress;
  return s_f + (s_i - s_f) * remaining * remaining * remaining;
}

double rigl_drop_fraction(double alpha, double t, double t_end) {
  if (t_end <= 0 || t >= t_end) return 0.0;
  return alpha / 2.0 * (1.0 + std::cos(std::numbers::pi * std::max(t, 0.0) / t_end));
}

double erdos_renyi_density(double epsilon, std::int64_t n_in, std::int64_t n_out) {
  const double d = epsilon * static_cast<double>(n_in + n_out) /
                   (static_cast<double>(n_in) * static_cast<double>(n_out));
  return std::min(d, 1.0);
}

std::vector<double> layer_densities(const std::vector<std::vector<std::int64_t>>& shapes,
                                    double density, DensityRule rule) {
  const std::size_t n = shapes.size();
  std::vector<double> numel(n), raw(n);
  for (std::size_t i = 0; i < n; ++i) {
    double count = 1, sum = 0;
    for (std::size_t d = 0; d < shapes[i].size(); ++d) {
      count *= static_cast<double>(shapes[i][d]);
      if (rule == DensityRule::erk || d < 2) sum += static_cast<double>(shapes[i][d]);
    }
    double prod = 1;
    for (std::size_t d = 0; d < shapes[i].size() && (rule == DensityRule::erk || d < 2); ++d)
      prod *= static_cast<double>(shapes[i][d]);
    numel[i] = count;
    raw[i] = rule == DensityRule::uniform ? 1.0 : sum / prod;
  }
  // Find eps with sum_i min(1, eps*raw_i)*numel_i = density*total; layers that saturate are
  // dense and the budget of the rest is redistributed (RigL's sparse_utils loop).
  std::vector<bool> dense(n, false);
  double total = 0;
  for (double c : numel) total += c;
  const double budget = density * total;
  for (;;) {
    double dense_count = 0, scaled = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (dense[i])
        dense_count += numel[i];
      else
        scaled += raw[i] * numel[i];
    }
    const double eps = scaled > 0 ? (budget - dense_count) / scaled : 0.0;
    bool changed = false;
    for (std::size_t i = 0; i < n; ++i)
      if (!dense[i] && eps * raw[i] > 1.0) dense[i] = changed = true;
    if (!changed) {
      std::vector<double> out(n);
      for (std::size_t i = 0; i < n; ++i)
        out[i] = dense[i] ? 1.0 : std::clamp(eps * raw[i], 0.0, 1.0);
      return out;
    }
  }
}

}  // namespace verdant::compress
