#pragma once
// The schedules and density rules of the compression papers, as plain functions.
#include <cstdint>
#include <vector>

namespace verdant::compress {

// Zhu & Gupta (2017): s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n*dt))^3, clamped to
// [t0, t0 + n*dt]. `t0`, `span` (= n*dt) in any unit (epochs here). span <= 0: one-shot.
double cubic_sparsity(double s_i, double s_f, double t, double t0, double span);

// RigL's drop fraction: alpha/2 * (1 + cos(pi * t / t_end)); 0 from t_end on.
double rigl_drop_fraction(double alpha, double t, double t_end);

// Erdos-Renyi density of an n_in x n_out layer: eps * (n_in + n_out) / (n_in * n_out),
// capped at 1.
double erdos_renyi_density(double epsilon, std::int64_t n_in, std::int64_t n_out);

// Densities per layer (shapes as [out, in, kh, kw...]) so that the overall density over all
// layers is `density`. ER uses the first two dimensions only, ERK all of them (RigL); layers
// whose density would exceed 1 are kept dense and the others rescaled, as in RigL's code.
enum class DensityRule { uniform, er, erk };
std::vector<double> layer_densities(const std::vector<std::vector<std::int64_t>>& shapes,
                                    double density, DensityRule rule);

}  // namespace verdant::compress
