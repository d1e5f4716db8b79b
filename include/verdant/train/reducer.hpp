#pragma once
// Sums across the processes of a data-parallel run. The training loop calls it so that every
// process sees the same statistics (loss, accuracy, evaluation) although each trained on its
// own shard of every batch; a run of one process has no reducer.
#include <span>

namespace verdant::train {

class Reducer {
 public:
  virtual ~Reducer() = default;
  // Replaces every value by its sum over the processes (all of them call it, in the same order).
  virtual void sum(std::span<double> values) = 0;
};

}  // namespace verdant::train
