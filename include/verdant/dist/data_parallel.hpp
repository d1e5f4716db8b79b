#pragma once
// Data-parallel training over the processes of an MPI job, as PyTorch DDP does it: every
// process trains on its own shard of every batch (`batch_size` stays the global batch, so the
// learning rate keeps its meaning), all start from rank 0's weights, and after each backward
// pass the gradients are averaged by allreduce in buckets, started as soon as a bucket's
// gradients are complete so that communication overlaps the rest of the backward pass. Rank 0
// writes checkpoints and results; statistics and evaluation are summed over the processes.
#include <cstdint>
#include <memory>
#include <string>

#include "verdant/core/error.hpp"
#include "verdant/dist/communicator.hpp"
#include "verdant/train/run.hpp"

namespace verdant::dist {

// An error every process of the job raises alike (a mismatch found at start-up): rank 0
// reports it, the others end quietly.
class JobError : public Error {
 public:
  using Error::Error;
};

struct DataParallelOptions {
  bool overlap = true;      // start each bucket's allreduce during backward
  double bucket_mb = 25.0;  // PyTorch DDP's default bucket size
};

// Time spent on communication, for the benchmark and the run's summary.
struct CommStats {
  std::int64_t steps = 0;
  double step_seconds = 0;       // from a step's start to its optimizer update
  double allreduce_seconds = 0;  // waiting for gradient sums (after backward)
};

// Makes `options` a data-parallel run over the world (no change when the world is one
// process). Returns the stats it will fill.
std::shared_ptr<CommStats> make_data_parallel(train::TrainingOptions& options,
                                              DataParallelOptions dp = {});

}  // namespace verdant::dist
